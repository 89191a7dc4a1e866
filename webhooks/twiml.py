"""TwiML rendering: the one place that knows voices, languages and verbs."""
from __future__ import annotations

from flask import Response
from twilio.twiml.voice_response import VoiceResponse

from core.config import Config


def say(resp: VoiceResponse | object, config: Config, text: str, lang: str) -> None:
    """Append a <Say> in `lang` with the voice the configuration pairs with it."""
    language = config["languages"].get(lang) or config["languages"][config["hotline"]["default_language"]]
    # `resp` is a VoiceResponse or a <Gather> (twilio-python gives both .say but no common type):
    resp.say(text, voice=language["voice"], language=language["code"])  # type: ignore[attr-defined]


def twiml(resp: VoiceResponse, status: int = 200) -> Response:
    """A Flask response carrying the TwiML document."""
    return Response(str(resp), status=status, mimetype="application/xml")


def apology(config: Config, lang: str | None = None) -> Response:
    """The safe answer when nothing better can be said: an apology, then hang up."""
    resp = VoiceResponse()
    say(
        resp,
        config,
        config.prompt("apology", lang or config["hotline"]["default_language"]),
        lang or config["hotline"]["default_language"],
    )
    resp.hangup()
    return twiml(resp)
