from flask import Blueprint

bp = Blueprint("dispatch", __name__)
