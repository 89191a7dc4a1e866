"""What the answers without a store share: reading the request, and the TwiML they speak (apology, callback
offer, PIN question, holding in the degraded queue, the caller's conference and hold).

Holding while Redis is down happens in a plain Twilio queue `<prefix>-degraded` whose waitUrl is a static
document (or, once Redis answers again, /voice/degraded/hold hands back to the normal hold loop).
"""
from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from flask import Response, request
from twilio.twiml.voice_response import VoiceResponse

from callqueue.live import pen
from core.services import Services
from ivr.replies import GUEST, Say, say
from members.phones import normalize_phone
from webhooks.booking import spell_ticket
from webhooks.routes.ivr import flow_of, text
from webhooks.routes.queue import QUEUE_RESULT_URL
from webhooks.twiml import hold_document, join_conference, twiml
from webhooks.twiml import say as say_twiml

HOLD_URL = "/voice/degraded/hold"
PIN_URL = "/voice/degraded/pin"
OFFER_URL = "/voice/degraded/offer"
BRIDGED = ("redirected", "bridged", "bridging-in-process", "redirected-from-bridged")


def pick_lang(svc: Services, lang: str | None = None) -> str:
    """`lang` if the hotline speaks it, else its default language."""
    cfg = svc.config
    return lang if lang in cfg["languages"] else cfg["hotline"]["default_language"]


def speak(target: Any, svc: Services, s: Say) -> None:
    """Add one reply, in its own language, to a TwiML response or Gather."""
    say_twiml(target, svc.config, text(svc.config, s), s.lang)


def caller_of(svc: Services) -> str:
    """The caller ID of this webhook's call, normalised ("" when absent or not a phone number)."""
    return normalize_phone(request.form.get("From"), svc.config["hotline"]["phone_region"]) or ""


def callable_number(svc: Services, caller: str) -> str | None:
    """The caller ID as a number we may call back (the same rules as a keyed-in callback number), or None."""
    return flow_of(svc).numbers.check(caller) if caller else None


def queue_name(svc: Services) -> str:
    """The plain Twilio queue callers hold in while Redis is down (outside the pen's shards)."""
    return pen.degraded_name(svc.config)


def ticket_arg() -> str:
    """The ticket number carried in our own hold URL (?t=), or "" when it is not one."""
    t = request.args.get("t", "")
    return t if t.isdigit() and len(t) <= 12 else ""


def enqueue_degraded(resp: VoiceResponse, svc: Services, number: str | None, lang: str) -> Response:
    """Hold in the degraded queue; its waitUrl answers without Redis (and hands back to /voice/wait once it is back)."""
    wait = HOLD_URL + "?" + urlencode({"t": number or "", "l": lang})
    resp.enqueue(queue_name(svc), wait_url=wait, wait_url_method="POST", action=QUEUE_RESULT_URL, method="POST")
    return twiml(resp)


def goodbye(svc: Services, says: list[Say], lang: str) -> Response:
    """Say `says`, then goodbye, and hang up."""
    resp = VoiceResponse()
    for s in says:
        speak(resp, svc, s)
    speak(resp, svc, say("goodbye", lang))
    resp.hangup()
    return twiml(resp)


def empty() -> Response:
    """An empty TwiML document: nothing to say (status callbacks; a whisper with both stores down)."""
    return twiml(VoiceResponse())


def static_hold(svc: Services, number: str, lang: str) -> Response:
    """A waitUrl document that needs no store: you keep your place (and your ticket), then hold audio."""
    resp = VoiceResponse()
    speak(resp, svc, say("degraded_hold", lang))
    if number:
        speak(resp, svc, say("degraded_hold_ticket", lang, number=spell_ticket(number)))
    hold_url = svc.config["queue"]["hold_music_url"]
    if hold_url:
        resp.play(hold_url)
    else:
        resp.pause(length=svc.config["queue"]["announce_every_s"])
    return twiml(resp)


def ask_pin(svc: Services, member_id: int, tries: int, lang: str, says: list[Say]) -> Response:
    """Ask for the PIN; the member and the tries so far travel in the signed action URL (no session without Redis)."""
    url = PIN_URL + "?" + urlencode({"m": member_id, "n": tries})
    resp = VoiceResponse()
    for s in says:
        speak(resp, svc, s)
    gather = resp.gather(
        input="dtmf", action=url, method="POST", timeout=flow_of(svc).tree.timeout_s, finish_on_key="#"
    )
    speak(gather, svc, say("pin_prompt", lang))
    resp.redirect(url, method="POST")  # silence: the same question, with no input
    return twiml(resp)


def offer_callback(svc: Services, caller: str, tier: str, verified: bool, uid: str | None, lang: str,
                   says: list[Say]) -> Response:
    """The apology and "press 1 to be called back on this number" (just the apology without a number to call)."""
    resp = VoiceResponse()
    for s in says:
        speak(resp, svc, s)
    if not callable_number(svc, caller):
        speak(resp, svc, say("apology", lang))
        resp.hangup()
        return twiml(resp)
    query = {"t": tier, "l": lang, **({"v": "1", "u": uid or ""} if verified else {})}
    gather = resp.gather(input="dtmf", num_digits=1, action=OFFER_URL + "?" + urlencode(query), method="POST",
                         timeout=flow_of(svc).tree.timeout_s)
    speak(gather, svc, say("degraded_offer", lang))
    speak(resp, svc, say("goodbye", lang))
    resp.hangup()
    return twiml(resp)


def tier_label(svc: Services, tier: str, lang: str) -> str:
    """A tier's name as said in `lang` (an unknown tier is a guest)."""
    labels = svc.config.tiers.get(tier, svc.config.tiers[GUEST])["label"]
    return labels.get(lang) or labels[svc.config["hotline"]["default_language"]]


def queue_left(resp: VoiceResponse, svc: Services, result: str, lang: str) -> Response:
    """The end of an Enqueue action's answer: an apology after an error, goodbye after <Leave>, and hang up
    unless the caller is being bridged to an agent."""
    if result in ("error", "system-error"):
        speak(resp, svc, say("apology", lang))
    if result == "leave":
        speak(resp, svc, say("goodbye", lang))
    if result not in BRIDGED:
        resp.hangup()
    return twiml(resp)


def join_as_caller(svc: Services, sid: str, lang: str) -> Response:
    """The caller joins their call's conference (the agent who answered waits there), then goodbye when it ends."""
    resp = VoiceResponse()
    join_conference(resp, sid, label="caller", starts=False, ends=True, wait_url="")
    speak(resp, svc, say("goodbye", lang))
    resp.hangup()
    return twiml(resp)


def conference_hold(svc: Services) -> Response:
    """HoldUrl without the caller's session: the hold notice in the default language, then the hold audio."""
    return twiml(hold_document(svc.config, pick_lang(svc)))
