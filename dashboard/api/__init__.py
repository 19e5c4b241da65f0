"""The JSON API: one blueprint, session cookie or Bearer token."""

from flask import Blueprint

bp = Blueprint("api", __name__)
