from __future__ import annotations

import math

import sqlalchemy as sa
from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user, login_required, login_user, logout_user

from dashboard.auth.forms import LoginForm, TokenForm
from dashboard.auth.models import ApiToken
from dashboard.auth.services import (
    authenticate,
    create_token,
    end_login,
    normalize_email,
    start_login,
)
from dashboard.auth.throttle import throttle_for
from dashboard.extensions import db
from dashboard.web import now, safe_target

bp = Blueprint("auth", __name__)


@bp.route("/login", methods=["GET", "POST"])
def login():
    if current_user.is_authenticated:
        return redirect(url_for("events.index"))
    form = LoginForm()
    if form.validate_on_submit():
        email, address = normalize_email(form.email.data or ""), request.remote_addr or "unknown"
        throttle = throttle_for(current_app._get_current_object())  # type: ignore[attr-defined]
        wait = throttle.wait(email, address)
        if wait is not None:
            return _throttled(form, wait)
        user = authenticate(db.session, email, form.password.data or "")
        if user is None:
            throttle.failed(email, address)
            form.password.errors.append("Wrong e-mail or password.")
        else:
            throttle.succeeded(email)
            remember = bool(form.remember.data)
            remember_for = current_app.config["REMEMBER_COOKIE_DURATION"]
            start_login(db.session, user, remember=remember, now=now(), remember_for=remember_for)
            login_user(user, remember=remember)
            db.session.commit()
            return redirect(safe_target(request.args.get("next"), url_for("events.index")))
    return render_template("auth/login.html", form=form)


def _throttled(form: LoginForm, wait: int) -> tuple[str, int, dict[str, str]]:
    minutes = math.ceil(wait / 60)
    form.form_errors.append(
        "Too many failed sign-ins for this account or from this address. "
        f"Try again in {minutes} minute{'s' if minutes != 1 else ''}."
    )
    page = render_template("auth/login.html", form=form)
    return page, 429, {"Retry-After": str(wait)}


@bp.post("/logout")
@login_required
def logout() -> Response:
    end_login(db.session, current_user.get_id())  # a copy of the cookie stops working too
    db.session.commit()
    logout_user()
    flash("You are signed out.", "info")
    return redirect(url_for("auth.login"))


@bp.route("/account/tokens", methods=["GET", "POST"])
@login_required
def tokens():
    form = TokenForm()
    new_token = None
    if form.validate_on_submit():
        new_token = create_token(db.session, current_user, form.name.data or "")
        db.session.commit()
    rows = db.session.scalars(
        sa.select(ApiToken).where(ApiToken.user_id == current_user.id).order_by(ApiToken.id.desc())
    ).all()
    return render_template("auth/tokens.html", form=form, tokens=rows, new_token=new_token)


@bp.post("/account/tokens/<int:token_id>/revoke")
@login_required
def revoke_token(token_id: int):
    token = db.session.get(ApiToken, token_id)
    if token is None or token.user_id != current_user.id:
        abort(404)
    db.session.delete(token)
    db.session.commit()
    flash("Token revoked.", "info")
    return redirect(url_for("auth.tokens"))
