from flask import Blueprint, render_template
from flask_login import current_user, login_required

from dashboard.events.access import visible_events
from dashboard.events.models import Event
from dashboard.extensions import db

bp = Blueprint("events", __name__)


@bp.get("/")
@login_required
def index():
    events = db.session.scalars(visible_events(current_user).order_by(Event.starts_at.desc())).all()
    return render_template("events/index.html", events=events)
