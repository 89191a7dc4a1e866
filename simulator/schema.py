"""Validation of TwiML documents against the shared TwiML XML Schema."""
from __future__ import annotations

import functools
import os
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

SCHEMA_FILE = "twiml_v20100401_twilioRealtimeCallSchema.xsd"
# Attributes Twilio documents that the published schema (2010-04-01, from twiml-generator) does not know yet; they
# are set aside before validating. <Conference participantLabel> and jitterBufferSize:
# https://www.twilio.com/docs/voice/twiml/conference#attributes (labels since 2020:
# https://www.twilio.com/changelog/conference-participant-labels).
NEWER_ATTRIBUTES = {"Conference": ("participantLabel", "jitterBufferSize")}


class TwimlInvalid(AssertionError):
    """A TwiML document that Twilio would refuse; the message holds the schema's reasons."""


def schema_path() -> Path | None:
    """HOTLINE_TWIML_SCHEMA, else ../shared/twiml-schema/ beside the project; None when absent."""
    env = os.environ.get("HOTLINE_TWIML_SCHEMA")
    if env:
        p = Path(env)
        return p if p.is_file() else None
    here = Path(__file__).resolve().parent.parent
    for base in (here, Path.cwd()):
        candidate = base.parent / "shared" / "twiml-schema" / SCHEMA_FILE
        if candidate.is_file():
            return candidate
    return None


@functools.lru_cache(maxsize=1)
def _schema() -> Any:
    path = schema_path()
    if path is None:
        return None
    import xmlschema  # a test/simulator dependency, not needed to serve calls

    return xmlschema.XMLSchema(str(path))


def schema_available() -> bool:
    """True when the shared schema (and xmlschema) can be loaded."""
    try:
        return _schema() is not None
    except ImportError:
        return False


def validate_twiml(text: str) -> None:
    """Raise TwimlInvalid listing every schema error; no-op when the schema is absent (callers report that)."""
    schema = _schema()
    if schema is None:
        return
    errors = [str(e.reason or e) + f" (at {e.path})" for e in schema.iter_errors(_without_newer_attributes(text))]
    if errors:
        raise TwimlInvalid(
            "TwiML does not validate against the shared schema:\n  "
            + "\n  ".join(errors)
            + "\n--- document ---\n"
            + text
        )


def _without_newer_attributes(text: str) -> str:
    """The document without the attributes of NEWER_ATTRIBUTES (as it was when nothing is to set aside)."""
    if not any(name in text for names in NEWER_ATTRIBUTES.values() for name in names):
        return text
    try:
        root = ET.fromstring(text)
    except ET.ParseError:
        return text  # the schema reports it
    for tag, names in NEWER_ATTRIBUTES.items():
        for el in root.iter(tag):
            for name in names:
                el.attrib.pop(name, None)
    return ET.tostring(root, encoding="unicode")
