"""The /voice blueprint with every route and request hook on it: what the app factory registers."""
from __future__ import annotations

from flask import Blueprint

from webhooks.degraded import answers, health
from webhooks.degraded import routes as degraded_routes
from webhooks.routes import callback, conference, ivr, queue
from webhooks.routes.voice import bp

# Importing these registers their routes and hooks on `bp`: the IVR (/voice/incoming, /voice/ivr/<step>), the
# queue (/voice/queue, /wait, /queue-result, /status), the connected call (/voice/agent/answer, /agent/status,
# /connect, /conference/status, /conference/hold), the callback call, and the answers without a store
# (/voice/degraded/*, the error handler, the store-health hooks).
ROUTE_MODULES = (ivr, queue, conference, callback, degraded_routes, answers, health)


def voice_blueprint() -> Blueprint:
    """The /voice/* blueprint, every route registered."""
    return bp
