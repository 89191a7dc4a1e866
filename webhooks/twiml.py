"""TwiML rendering: the one place that knows voices, languages and verbs."""
from __future__ import annotations

from flask import Response
from twilio.twiml.voice_response import Dial, VoiceResponse

from callqueue.live.conference import conference_name
from core.config import Config
from webhooks import urls

# statusCallbackEvent of the call's conference: every change the hotline follows (none are sent unless named:
# https://www.twilio.com/docs/voice/twiml/conference#attributes-statusCallbackEvent).
# The conference events the hotline acts on (/voice/conference/status): start, end and modify would be requests on
# the hot path that change nothing (the caller's and the agent's leaves already say when the call is over).
CONFERENCE_EVENTS = "join leave mute hold"


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


def join_conference(resp: VoiceResponse, call_sid: str, *, label: str, starts: bool, ends: bool,
                    wait_url: str | None = None) -> None:
    """Append `<Dial><Conference>` into the conference of the caller's call `call_sid`, as `label` (caller, agent,
    consult); `starts`/`ends`: startConferenceOnEnter/endConferenceOnExit; `wait_url`: what plays before it starts
    ("" nothing; None Twilio's default music). No beeps: the whisper and the hold notice say who comes and goes."""
    attrs: dict[str, object] = {
        "start_conference_on_enter": starts, "end_conference_on_exit": ends, "beep": False,
        "participant_label": label, "status_callback": urls.CONFERENCE_STATUS, "status_callback_method": "POST",
        "status_callback_event": CONFERENCE_EVENTS,
    }
    if wait_url is not None:
        attrs.update(wait_url=wait_url, wait_method="POST")
    dial = Dial()
    dial.conference(conference_name(call_sid), **attrs)
    resp.append(dial)


def hold_document(config: Config, lang: str) -> VoiceResponse:
    """HoldUrl's document: a short notice, the hold audio (or a pause), then again: silence follows the end of a
    hold or wait document (https://www.twilio.com/docs/voice/twiml/conference#attributes-waiturl), the loop is ours."""
    resp = VoiceResponse()
    say(resp, config, config.prompt("hold", lang), lang)
    music = config["queue"]["hold_music_url"]
    if music:
        resp.play(music)
    else:
        resp.pause(length=config["queue"]["announce_every_s"])
    resp.redirect(urls.HOLD, method="POST")
    return resp
