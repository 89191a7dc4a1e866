"""The OpenAPI 3.1 description of /api (served at /api/openapi.json)."""
from __future__ import annotations

from typing import Any

_STR = {"type": "string"}
_INT = {"type": "integer"}
_NUM = {"type": ["number", "null"]}
_ARRAY = {"type": "array"}
_OBJECT = {"type": "object"}
_STR_OR_NULL = {"type": ["string", "null"]}


def _obj(properties: dict[str, Any], required: list[str] | None = None, kind: Any = "object") -> dict[str, Any]:
    """A JSON object schema."""
    out: dict[str, Any] = {"type": kind}
    if required is not None:
        out["required"] = required
    out["properties"] = properties
    return out


def _err(desc: str) -> dict[str, Any]:
    """An error answer: JSON with an `error` message."""
    return {"description": desc, "content": {"application/json": {"schema": _ERROR}}}


def _ok(schema: dict[str, Any], desc: str = "OK") -> dict[str, Any]:
    """A JSON answer of `schema`."""
    return {"description": desc, "content": {"application/json": {"schema": schema}}}


def _body(schema: dict[str, Any]) -> dict[str, Any]:
    """A required JSON request body of `schema`."""
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def _query(name: str, schema: dict[str, Any], description: str | None = None) -> dict[str, Any]:
    """A query parameter."""
    return {"name": name, "in": "query", **({"description": description} if description else {}), "schema": schema}


_ERROR = _obj({"error": _STR}, ["error"])
_COUNTS = ("waiting", "offered", "answered", "abandoned", "short_abandoned", "to_callback")
_FIGURES = {
    "type": "object",
    "properties": {
        k: (_INT if k in _COUNTS else _NUM)
        for k in ("waiting", "longest_wait_s", "offered", "answered", "abandoned", "short_abandoned",
                  "asa_s", "service_level", "abandon_rate", "to_callback")
    },
}
_CALL = _obj({
    "call_sid": _STR,
    "member": _obj({"uid": _STR, "name": _STR, "tier": _STR}, kind=["object", "null"]),
    "tier": _STR_OR_NULL,
    "category": _STR_OR_NULL,
    "verified": {"type": "boolean"},
    "waited_s": _NUM,
    "connected": {"type": "boolean"}, "number": _STR_OR_NULL,
    "tier_label": _OBJECT, "category_label": _OBJECT,
    "callback": _STR_OR_NULL, "tickets": _ARRAY, "last_calls": _ARRAY,
}, kind=["object", "null"])
_CALL["properties"].update({
    "state": {"type": "string", "enum": ["ringing", "connected", "held", "consulting", "wrap_up"]},
    "role": {"type": "string", "enum": ["agent", "target"]}, "in_state_s": _NUM,
    "held": {"type": "boolean"}, "muted": {"type": "boolean"}, "joined": {"type": "boolean"},
    "transfer": _obj({"to": _STR, "mode": _STR, "by": _STR, "state": _STR}, kind=["object", "null"]),
    "transferred_by": _STR_OR_NULL, "agents": {"type": "array", "items": _STR},
})
_LINE = _obj({"waiting": _INT, "longest_wait_s": _NUM, "tiers": {"type": "array", "items": _obj({
    "tier": _STR, "label": _OBJECT, "waiting": _INT, "longest_wait_s": _NUM})}}, ["waiting", "tiers"])
_AGENT = _obj({
    "login": _STR, "name": _STR,
    "status": {"type": "string", "enum": ["offline", "available", "on_call", "wrap_up", "away"]},
    "reason": _STR_OR_NULL, "call": _CALL, "since": _NUM, "in_state_s": _NUM, "wrap_up_due": _NUM,
    "wrap_up_max_due": _NUM, "device": _obj({"mode": {"type": "string", "enum": ["sdk", "simulated", "phone"]},
                                             "identity": _STR_OR_NULL, "endpoint": _STR_OR_NULL}),
    "line": _LINE,
}, ["login", "name", "status", "call"])
_AGENT_ROW = _obj({"login": _STR, "name": _STR, "role": _STR, "state": _STR, "reason": _STR_OR_NULL,
                   "call_state": _STR_OR_NULL, "in_state_s": _NUM, "caller_tier": _STR_OR_NULL, "wrap_up_due": _NUM})
_PRESENCE = _obj({"login": _STR, "at": _STR, "from": _STR_OR_NULL, "to": _STR, "reason": _STR_OR_NULL})
_AUTH_ERRORS = {"401": _err("not logged in"), "403": _err("role not allowed"),
                "429": _err("locked after failed logins")}
_LIMIT = _query("limit", {"type": "integer", "minimum": 1, "maximum": 1000})

_CALLBACK_FIGURES = ("scheduled", "due", "overdue", "completed", "failed")
_TICKET_STATUSES = ("scheduled", "dialing", "connected", "completed", "failed", "cancelled")
_TICKET = _obj({
    "number": _STR, "status": {"type": "string", "enum": list(_TICKET_STATUSES)}, "tier": _STR,
    "phone": _STR, "reason": _STR, "due": _STR, "attempts": _INT,
    "max_attempts": _INT, "note": _STR_OR_NULL, "history": _ARRAY})

OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "Hotline API", "version": "1.0.0",
             "description": "Agents' state and calls; supervisors' live queue and statistics. HTTP Basic with the "
                            "agent's login and password, or the console's session cookie (writes then need the "
                            "X-CSRF-Token header of the page)."},
    "components": {"securitySchemes": {"basic": {"type": "http", "scheme": "basic"}}},
    "security": [{"basic": []}],
    "paths": {
        "/api/agents/me": {"get": {"summary": "The logged-in agent",
                                   "responses": {"200": _ok(_AGENT), **_AUTH_ERRORS}}},
        "/api/agents/me/status": {"put": {
            "summary": "Choose available, away or offline",
            "requestBody": _body(_obj({"status": {"type": "string", "enum": ["available", "away", "offline"]}},
                                      ["status"])),
            "responses": {"200": _ok(_AGENT), "400": _err("bad JSON or unknown status"), "409": _err("on a call"),
                          **_AUTH_ERRORS},
        }},
        "/api/agents/me/wrapup": {"post": {
            "summary": "Save wrap-up notes for the last call and end the wrap-up",
            "requestBody": _body(_obj({"notes": {"type": "string", "maxLength": 4000},
                                       "disposition": {"type": "string",
                                                       "description": "a key of [console.dispositions]"}},
                                      ["disposition"])),
            "responses": {"200": _ok(_AGENT), "400": _err("bad JSON or a disposition not configured"),
                          "409": _err("still on the call, or nothing to wrap up"), **_AUTH_ERRORS},
        }},
        "/api/agents/me/today": {"get": {
            "summary": "The logged-in agent's own figures today",
            "responses": {"200": _ok(_obj({"calls_taken": _INT, "handled": _INT, "mean_handle_s": _NUM,
                                           "holds": _INT, "hold_s": _NUM, "transfers": _INT})),
                          **_AUTH_ERRORS},
        }},
        "/api/agents": {"get": {
            "summary": "Every agent's state, time in state and current caller's tier (supervisors)",
            "responses": {"200": _ok({"type": "array", "items": _AGENT_ROW}), **_AUTH_ERRORS},
        }},
        "/api/dashboard": {"get": {
            "summary": "The supervisor dashboard's live picture: figures with target states, agents, queue, callbacks",
            "responses": {"200": _ok(_obj({
                "as_of": _STR, "stats": _OBJECT, "agents": {"type": "array", "items": _AGENT_ROW},
                "queue": _ARRAY, "callbacks": _OBJECT}, ["as_of", "stats", "agents", "queue", "callbacks"])),
                **_AUTH_ERRORS},
        }},
        "/api/staffing": {"get": {
            "summary": "Agents needed this quarter hour and the next three, by Erlang C from today's arrivals "
                       "(supervisors)",
            "responses": {"200": _ok(_obj({
                "targets": _OBJECT, "current": _INT,
                "intervals": {"type": "array", "items": _obj({
                    "start": _STR, "calls": {"type": "number"}, "load_erlangs": {"type": "number"},
                    "erlang_agents": _INT, "agents": _INT, "open": {"type": "boolean"}},
                    ["start", "calls", "agents"])}}, ["targets", "current", "intervals"])),
                **_AUTH_ERRORS},
        }},
        "/api/history": {"get": {
            "summary": "A day's figures per 15-minute interval (supervisors)",
            "parameters": [_query("date", {"type": "string", "pattern": "^([0-9]{4}-[0-9]{2}-[0-9]{2})?$"},
                                  "YYYY-MM-DD; empty or absent: today")],
            "responses": {"200": _ok(_obj({
                "date": _STR, "timezone": _STR, "interval_minutes": _INT,
                "tiers": {"type": "array", "items": _STR},
                "intervals": {"type": "array", "items": _obj({
                    "start": _STR, "tiers": {"type": "object", "additionalProperties": _FIGURES},
                    "overall": _FIGURES})},
                "day": _OBJECT,
                "handling": _obj({"calls_held": _INT, "holds": _INT, "hold_s": _NUM, "calls_transferred": _INT,
                                  "transfers": _INT, "transfers_by_kind": {"type": "object",
                                                                           "additionalProperties": _INT},
                                  "wrap_ups_expired": _INT})},
                ["date", "intervals", "day", "handling"])), "400": _err("bad date"), **_AUTH_ERRORS},
        }},
        "/api/queue": {"get": {
            "summary": "Callers waiting, in service order (supervisors)",
            "parameters": [_LIMIT],
            "responses": {"200": _ok({"type": "array", "items": _obj({
                "call_sid": _STR, "position": _INT, "tier": _STR,
                "category": _STR_OR_NULL, "verified": {"type": "boolean"},
                "number": _STR_OR_NULL, "waited_s": _NUM})}), "400": _err("bad limit"), **_AUTH_ERRORS},
        }},
        "/api/stats": {"get": {
            "summary": "Live figures per tier and overall (supervisors)",
            "parameters": [_query("window", {"type": "string", "enum": ["today", "15m"]})],
            "responses": {"200": _ok(_obj({
                "window": _STR, "as_of": _STR,
                "tiers": {"type": "object", "additionalProperties": _FIGURES}, "overall": _FIGURES,
                "agents": {"type": "object", "additionalProperties": _INT},
                "callbacks": _obj({k: _INT for k in _CALLBACK_FIGURES}, list(_CALLBACK_FIGURES))},
                ["window", "as_of", "tiers", "overall", "agents", "callbacks"])),
                "400": _err("unknown window"), **_AUTH_ERRORS},
        }},
        "/api/callbacks": {"get": {
            "summary": "Callback tickets with their attempts, optionally of one status (supervisors)",
            "parameters": [_query("status", {"type": "string", "enum": ["", *_TICKET_STATUSES]},
                                  "one status; empty or absent: every status"),
                           _LIMIT],
            "responses": {"200": _ok({"type": "array", "items": _TICKET}), "400": _err("bad status or limit"),
                          **_AUTH_ERRORS},
        }},
        "/api/callbacks/{number}/cancel": {"post": {
            "summary": "Cancel a scheduled or ringing callback ticket (supervisors)",
            "parameters": [{"name": "number", "in": "path", "required": True, "schema": _STR}],
            "responses": {"200": _ok(_TICKET), "404": _err("no such ticket"),
                          "409": _err("connected or already closed"), **_AUTH_ERRORS},
        }},
        **{f"/api/calls/{{call_sid}}/{action}": {"post": {
            "summary": summary,
            "parameters": [{"name": "call_sid", "in": "path", "required": True, "schema": _STR}],
            **({"requestBody": _body(body)} if body else {}),
            "responses": {"200": _ok(_AGENT), "400": _err("bad JSON"), "404": _err("no such call or agent"),
                          "409": _err("not now: the reason says why"), "502": _err("Twilio did not do it"),
                          **_AUTH_ERRORS},
        }} for action, summary, body in (
            ("hold", "Put the caller on hold or take them off it", _obj({"hold": {"type": "boolean"}}, ["hold"])),
            ("mute", "Mute or unmute the agent", _obj({"mute": {"type": "boolean"}}, ["mute"])),
            ("hangup", "End the agent's side of the call (a ringing one is declined)", None),
            ("transfer", "Transfer to an agent (cold or warm) or back to the queue",
             _obj({"to": {"type": "string", "description": '"queue" or "agent:<login>"'},
                   "mode": {"type": "string", "enum": ["cold", "warm"]}}, ["to"])),
            ("transfer/complete", "Hand a warm transfer over to its target", None),
            ("transfer/cancel", "Cancel the transfer under way", None),
        )},
        "/api/agents/me/token": {"get": {
            "summary": "How the page's softphone registers: a Voice access token (real account), the simulated "
                       "device (offline), or a phone",
            "responses": {"200": _ok(_obj({"mode": {"type": "string", "enum": ["sdk", "simulated", "phone"]},
                                           "identity": _STR, "token": _STR, "ttl_s": _INT, "expires_at": _NUM,
                                           "endpoint": _STR_OR_NULL}, ["mode"])), **_AUTH_ERRORS},
        }},
        "/api/agents/me/heartbeat": {"post": {
            "summary": "The console is there, with its device's state",
            "requestBody": _body(_obj({"device": {"type": "string",
                                                  "enum": ["registered", "unregistered", "unknown"]}})),
            "responses": {"200": _ok(_AGENT), "400": _err("bad JSON or device"),
                          "502": _err("the simulated device could not be set up"), **_AUTH_ERRORS},
        }},
        "/api/agents/me/device/{decision}": {"post": {
            "summary": "Accept or decline the call ringing the agent's simulated device (a phone: decline only)",
            "parameters": [{"name": "decision", "in": "path", "required": True,
                            "schema": {"type": "string", "enum": ["accept", "decline"]}}],
            "responses": {"200": _ok(_AGENT), "404": _err("unknown decision"),
                          "409": _err("nothing rings, or answer on the device"), "502": _err("the simulator failed"),
                          **_AUTH_ERRORS},
        }},
        "/api/agents/me/wrapup/extend": {"post": {
            "summary": "More time to wrap up (up to queue.wrap_up_max_s in all)",
            "requestBody": _body(_obj({"seconds": {"type": "number", "exclusiveMinimum": 0, "maximum": 3600}},
                                      ["seconds"])),
            "responses": {"200": _ok(_AGENT), "400": _err("bad seconds"), "409": _err("not in wrap-up"),
                          **_AUTH_ERRORS},
        }},
        "/api/line": {"get": {"summary": "Callers waiting per tier and the longest wait (no personal data)",
                              "responses": {"200": _ok(_LINE), **_AUTH_ERRORS}}},
        "/api/agents/me/presence": {"get": {
            "summary": "The agent's own state changes today",
            "responses": {"200": _ok({"type": "array", "items": _PRESENCE}), **_AUTH_ERRORS}}},
        "/api/presence": {"get": {
            "summary": "Every agent's recent state changes, newest first (supervisors)", "parameters": [_LIMIT],
            "responses": {"200": _ok({"type": "array", "items": _PRESENCE}), "400": _err("bad limit"),
                          **_AUTH_ERRORS}}},
        "/api/openapi.json": {"get": {"summary": "This document", "security": [],
                                      "responses": {"200": {"description": "OpenAPI 3.1"}}}},
    },
}
