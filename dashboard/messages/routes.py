from flask import Blueprint

bp = Blueprint("messages", __name__)
