"""The /api blueprint with every route on it: what the app factory registers."""
from __future__ import annotations

from flask import Blueprint

from console import calls_api
from console.api import bp

# Importing these registers their routes on `bp`: console/api.py's own (the agent's state, the queue, statistics,
# callbacks) and the softphone's (call controls, device, heartbeat, the line, presence changes).
API_MODULES = (calls_api,)


def api_blueprint() -> Blueprint:
    """The /api/* blueprint, every route registered."""
    return bp
