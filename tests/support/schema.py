"""Whether the shared TwiML schema can be used, and if not, why (for the report header and HOTLINE_REQUIRE_SCHEMA)."""
from __future__ import annotations

import os

from simulator.schema import SCHEMA_FILE, schema_available, schema_path

REQUIRE = "HOTLINE_REQUIRE_SCHEMA"


def schema_required() -> bool:
    """CI sets HOTLINE_REQUIRE_SCHEMA=1: a run without the schema must fail, never skip the checks."""
    return os.environ.get(REQUIRE, "") not in ("", "0")


def schema_problem() -> str | None:
    """None when TwiML documents can be validated; else the reason, naming where the schema was looked for."""
    if schema_available():
        return None
    env = os.environ.get("HOTLINE_TWIML_SCHEMA")
    if env and schema_path() is None:
        return f"HOTLINE_TWIML_SCHEMA={env} is not a file"
    if schema_path() is None:
        return f"no {SCHEMA_FILE} in ../shared/twiml-schema/ beside the project (or set HOTLINE_TWIML_SCHEMA)"
    return f"the schema {schema_path()} is there but the xmlschema package is not installed (make install)"
