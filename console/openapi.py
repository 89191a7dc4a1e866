"""The OpenAPI 3.1 description of /api (served at /api/openapi.json)."""
from __future__ import annotations

from typing import Any

_ERROR = {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}}
_NUM = {"type": ["number", "null"]}
_FIGURES = {
    "type": "object",
    "properties": {
        k: (
            {"type": "integer"}
            if k in ("waiting", "offered", "answered", "abandoned", "short_abandoned", "to_callback")
            else _NUM
        )
        for k in (
            "waiting",
            "longest_wait_s",
            "offered",
            "answered",
            "abandoned",
            "short_abandoned",
            "asa_s",
            "service_level",
            "abandon_rate",
            "to_callback",
        )
    },
}
_CALL = {
    "type": ["object", "null"],
    "properties": {
        "call_sid": {"type": "string"},
        "member": {
            "type": ["object", "null"],
            "properties": {"uid": {"type": "string"}, "name": {"type": "string"}, "tier": {"type": "string"}},
        },
        "tier": {"type": ["string", "null"]},
        "category": {"type": ["string", "null"]},
        "verified": {"type": "boolean"},
        "waited_s": _NUM,
        "connected": {"type": "boolean"},
        "number": {"type": ["string", "null"]},
        "tier_label": {"type": "object"},
        "category_label": {"type": "object"},
        "callback": {"type": ["string", "null"]},
        "tickets": {"type": "array"},
        "last_calls": {"type": "array"},
    },
}
_AGENT = {
    "type": "object",
    "required": ["login", "name", "status", "call"],
    "properties": {
        "login": {"type": "string"}, "name": {"type": "string"},
        "status": {"type": "string", "enum": ["offline", "available", "on_call", "wrap_up", "away"]},
        "call": _CALL, "since": _NUM, "wrap_up_due": _NUM,
    },
}

_AGENT_ROW = {"type": "object", "properties": {
    "login": {"type": "string"}, "name": {"type": "string"}, "role": {"type": "string"},
    "state": {"type": "string"}, "in_state_s": _NUM, "caller_tier": {"type": ["string", "null"]}, "wrap_up_due": _NUM}}


def _err(desc: str) -> dict[str, Any]:
    return {"description": desc, "content": {"application/json": {"schema": _ERROR}}}


def _ok(schema: dict[str, Any], desc: str = "OK") -> dict[str, Any]:
    return {"description": desc, "content": {"application/json": {"schema": schema}}}


_AUTH_ERRORS = {
    "401": _err("not logged in"),
    "403": _err("role not allowed"),
    "429": _err("locked after failed logins"),
}

_CALLBACK_FIGURES = ("scheduled", "due", "overdue", "completed", "failed")
_TICKET_STATUSES = ("scheduled", "dialing", "connected", "completed", "failed", "cancelled")
_TICKET = {
    "type": "object",
    "properties": {
        "number": {"type": "string"},
        "status": {"type": "string", "enum": list(_TICKET_STATUSES)},
        "tier": {"type": "string"},
        "phone": {"type": "string"},
        "reason": {"type": "string"},
        "due": {"type": "string"},
        "attempts": {"type": "integer"},
        "max_attempts": {"type": "integer"},
        "note": {"type": ["string", "null"]},
        "history": {"type": "array"},
    },
}

OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "Hotline API",
        "version": "1.0.0",
        "description": "Agents' state and calls; supervisors' live queue and statistics. HTTP Basic with the agent's login and password, or the console's session cookie (writes then need the X-CSRF-Token header of the page).",
    },
    "components": {"securitySchemes": {"basic": {"type": "http", "scheme": "basic"}}},
    "security": [{"basic": []}],
    "paths": {
        "/api/agents/me": {
            "get": {"summary": "The logged-in agent", "responses": {"200": _ok(_AGENT), **_AUTH_ERRORS}}
        },
        "/api/agents/me/status": {
            "put": {
                "summary": "Choose available, away or offline",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["status"],
                                "properties": {"status": {"type": "string", "enum": ["available", "away", "offline"]}},
                            }
                        }
                    },
                },
                "responses": {
                    "200": _ok(_AGENT),
                    "400": _err("bad JSON or unknown status"),
                    "409": _err("on a call"),
                    **_AUTH_ERRORS,
                },
            }
        },
        "/api/agents/me/wrapup": {
            "post": {
                "summary": "Save wrap-up notes for the last call and end the wrap-up",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["disposition"],
                                "properties": {
                                    "notes": {"type": "string", "maxLength": 4000},
                                    "disposition": {"type": "string", "description": "a key of [console.dispositions]"},
                                },
                            }
                        }
                    },
                },
                "responses": {
                    "200": _ok(_AGENT),
                    "400": _err("bad JSON or a disposition not configured"),
                    "409": _err("still on the call, or nothing to wrap up"),
                    **_AUTH_ERRORS,
                },
            }
        },
        "/api/agents/me/today": {
            "get": {
                "summary": "The logged-in agent's own figures today",
                "responses": {
                    "200": _ok(
                        {
                            "type": "object",
                            "properties": {
                                "calls_taken": {"type": "integer"},
                                "handled": {"type": "integer"},
                                "mean_handle_s": _NUM,
                            },
                        }
                    ),
                    **_AUTH_ERRORS,
                },
            }
        },
        "/api/agents": {
            "get": {
                "summary": "Every agent's state, time in state and current caller's tier (supervisors)",
                "responses": {"200": _ok({"type": "array", "items": _AGENT_ROW}), **_AUTH_ERRORS},
            }
        },
        "/api/dashboard": {
            "get": {
                "summary": "The supervisor dashboard's live picture: figures with target states, agents, queue, callbacks",
                "responses": {
                    "200": _ok(
                        {
                            "type": "object",
                            "required": ["as_of", "stats", "agents", "queue", "callbacks"],
                            "properties": {
                                "as_of": {"type": "string"},
                                "stats": {"type": "object"},
                                "agents": {"type": "array", "items": _AGENT_ROW},
                                "queue": {"type": "array"},
                                "callbacks": {"type": "object"},
                            },
                        }
                    ),
                    **_AUTH_ERRORS,
                },
            }
        },
        "/api/staffing": {
            "get": {
                "summary": "Agents needed this quarter hour and the next three, by Erlang C from today's arrivals (supervisors)",
                "responses": {
                    "200": _ok(
                        {
                            "type": "object",
                            "required": ["targets", "current", "intervals"],
                            "properties": {
                                "targets": {"type": "object"},
                                "current": {"type": "integer"},
                                "intervals": {
                                    "type": "array",
                                    "items": {
                                        "type": "object",
                                        "required": ["start", "calls", "agents"],
                                        "properties": {
                                            "start": {"type": "string"},
                                            "calls": {"type": "number"},
                                            "load_erlangs": {"type": "number"},
                                            "erlang_agents": {"type": "integer"},
                                            "agents": {"type": "integer"},
                                            "open": {"type": "boolean"},
                                        },
                                    },
                                },
                            },
                        }
                    ),
                    **_AUTH_ERRORS,
                },
            }
        },
        "/api/history": {
            "get": {
                "summary": "A day's figures per 15-minute interval (supervisors)",
                "parameters": [
                    {
                        "name": "date",
                        "in": "query",
                        "description": "YYYY-MM-DD; empty or absent: today",
                        "schema": {"type": "string", "pattern": "^([0-9]{4}-[0-9]{2}-[0-9]{2})?$"},
                    }
                ],
                "responses": {
                    "200": _ok(
                        {
                            "type": "object",
                            "required": ["date", "intervals", "day"],
                            "properties": {
                                "date": {"type": "string"},
                                "timezone": {"type": "string"},
                                "interval_minutes": {"type": "integer"},
                                "tiers": {"type": "array", "items": {"type": "string"}},
                                "intervals": {
                                    "type": "array",
                                    "items": {
                                        "type": "object",
                                        "properties": {
                                            "start": {"type": "string"},
                                            "tiers": {"type": "object", "additionalProperties": _FIGURES},
                                            "overall": _FIGURES,
                                        },
                                    },
                                },
                                "day": {"type": "object"},
                            },
                        }
                    ),
                    "400": _err("bad date"),
                    **_AUTH_ERRORS,
                },
            }
        },
        "/api/queue": {
            "get": {
                "summary": "Callers waiting, in service order (supervisors)",
                "parameters": [
                    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 1000}}
                ],
                "responses": {
                    "200": _ok(
                        {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "properties": {
                                    "call_sid": {"type": "string"},
                                    "position": {"type": "integer"},
                                    "tier": {"type": "string"},
                                    "category": {"type": ["string", "null"]},
                                    "verified": {"type": "boolean"},
                                    "number": {"type": ["string", "null"]},
                                    "waited_s": _NUM,
                                },
                            },
                        }
                    ),
                    "400": _err("bad limit"),
                    **_AUTH_ERRORS,
                },
            }
        },
        "/api/stats": {
            "get": {
                "summary": "Live figures per tier and overall (supervisors)",
                "parameters": [
                    {"name": "window", "in": "query", "schema": {"type": "string", "enum": ["today", "15m"]}}
                ],
                "responses": {
                    "200": _ok(
                        {
                            "type": "object",
                            "required": ["window", "as_of", "tiers", "overall", "agents", "callbacks"],
                            "properties": {
                                "window": {"type": "string"},
                                "as_of": {"type": "string"},
                                "tiers": {"type": "object", "additionalProperties": _FIGURES},
                                "overall": _FIGURES,
                                "agents": {"type": "object", "additionalProperties": {"type": "integer"}},
                                "callbacks": {
                                    "type": "object",
                                    "required": list(_CALLBACK_FIGURES),
                                    "properties": {k: {"type": "integer"} for k in _CALLBACK_FIGURES},
                                },
                            },
                        }
                    ),
                    "400": _err("unknown window"),
                    **_AUTH_ERRORS,
                },
            }
        },
        "/api/callbacks": {
            "get": {
                "summary": "Callback tickets with their attempts, optionally of one status (supervisors)",
                "parameters": [
                    {
                        "name": "status",
                        "in": "query",
                        "description": "one status; empty or absent: every status",
                        "schema": {"type": "string", "enum": ["", *_TICKET_STATUSES]},
                    },
                    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 1000}},
                ],
                "responses": {
                    "200": _ok({"type": "array", "items": _TICKET}),
                    "400": _err("bad status or limit"),
                    **_AUTH_ERRORS,
                },
            }
        },
        "/api/callbacks/{number}/cancel": {
            "post": {
                "summary": "Cancel a scheduled or ringing callback ticket (supervisors)",
                "parameters": [{"name": "number", "in": "path", "required": True, "schema": {"type": "string"}}],
                "responses": {
                    "200": _ok(_TICKET),
                    "404": _err("no such ticket"),
                    "409": _err("connected or already closed"),
                    **_AUTH_ERRORS,
                },
            }
        },
        "/api/openapi.json": {
            "get": {"summary": "This document", "security": [], "responses": {"200": {"description": "OpenAPI 3.1"}}}
        },
    },
}
