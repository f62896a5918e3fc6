"""The ``/api`` surface: one parent blueprint whose hooks run once for every API blueprint
(Flask nested blueprints): identify the caller, keep signed answers out of shared caches."""
from __future__ import annotations

from flask import Blueprint

from . import api_v1, curator, everyday_api
from .auth import identify_caller, signed_answers_are_private

bp = Blueprint("api", __name__, url_prefix="/api")
bp.before_request(identify_caller)
bp.after_request(signed_answers_are_private)
bp.register_blueprint(api_v1.bp)
bp.register_blueprint(curator.bp)
bp.register_blueprint(everyday_api.bp)
