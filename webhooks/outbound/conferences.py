"""Twilio's Conference and Participant resources, as the gateway asks for them (mixed into TwilioGateway).

Sources: https://www.twilio.com/docs/voice/api/conference-resource (list by FriendlyName and Status) and
https://www.twilio.com/docs/voice/api/conference-participant-resource (update Hold/HoldUrl, Muted,
EndConferenceOnExit, Coaching; a participant is addressed by its CallSid). Every update here is safe to repeat:
it sets a state, so an unsure failure is sent again. Twilio requests a HoldUrl with GET unless HoldMethod says
POST (the Participant resource's HoldMethod defaults to GET): `hold_url` always goes with HoldMethod=POST.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any


class ConferenceRequests:
    """The conference half of the gateway; `_call` and `client` are TwilioGateway's."""

    client: Any
    _call: Callable[..., Any]

    def conference_sid(self, name: str) -> str | None:
        """The sid of the conference in progress named `name`, or None (not started, or over)."""
        found = self._call(
            "conferences.list",
            lambda: self.client.conferences.list(friendly_name=name, status="in-progress", limit=1),
            "read", again_if_unsure=True, conference=name,
        )
        return str(found[0].sid) if found else None

    def update_participant(self, conference_sid: str, call_sid: str, **fields: Any) -> None:
        """Set a participant's hold (with `hold_url`), mute, end_conference_on_exit or coaching state."""
        allowed = {"hold", "hold_url", "hold_method", "muted", "end_conference_on_exit", "coaching",
                   "call_sid_to_coach", "announce_url", "announce_method"}
        unknown = set(fields) - allowed
        if unknown:
            raise ValueError(f"update_participant: unknown fields {sorted(unknown)}")
        if "hold_url" in fields:
            fields.setdefault("hold_method", "POST")
        self._call(
            "participants.update",
            lambda: self.client.conferences(conference_sid).participants(call_sid).update(**fields),
            "move", again_if_unsure=True, call_sid=call_sid, conference=conference_sid,
        )
