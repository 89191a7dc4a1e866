"""Twilio's REST resources as JSON, and the records the REST API keeps for assertions."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

from simulator.confmodel import Conference, Participant
from simulator.network import API_VERSION
from simulator.queues import Member, Queue

PAGE_SIZE = 50


@dataclass(frozen=True)
class RestRequest:
    """One request to the REST API: `params` holds the first value of each field, `lists` all of them."""

    method: str
    path: str
    params: dict[str, str]
    lists: dict[str, list[str]]
    authorized: bool


@dataclass(frozen=True)
class Message:
    """A text message sent through Messages.json."""

    sid: str
    to: str
    from_: str
    body: str
    created: datetime = field(default_factory=lambda: datetime.now(UTC))


def rfc2822(when: datetime | None) -> str | None:
    """Twilio's date format."""
    return format_datetime(when) if when else None


def error(status: int, code: int, message: str) -> dict[str, Any]:
    """A Twilio error body."""
    return {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


def base(account_sid: str) -> str:
    """The account's URI prefix."""
    return f"/{API_VERSION}/Accounts/{account_sid}"


def call_json(account_sid: str, call: Any) -> dict[str, Any]:
    """A Call resource (a simulated call or a <Dial> leg)."""
    uri = f"{base(account_sid)}/Calls/{call.sid}.json"
    ended = call.ended is not None
    return {
        "sid": call.sid,
        "account_sid": account_sid,
        "parent_call_sid": call.parent_sid,
        "to": call.to,
        "to_formatted": call.to,
        "from": call.from_,
        "from_formatted": call.from_,
        "status": call.status,
        "direction": call.direction,
        "api_version": API_VERSION,
        "date_created": rfc2822(call.created),
        "date_updated": rfc2822(datetime.now(UTC)),
        "start_time": rfc2822(call.started),
        "end_time": rfc2822(call.ended),
        "duration": str(call.duration) if ended else None,
        "price": None,
        "price_unit": "USD",
        "answered_by": None,
        "caller_name": None,
        "forwarded_from": None,
        "group_sid": None,
        "phone_number_sid": None,
        "queue_time": "0",
        "trunk_sid": None,
        "annotation": None,
        "uri": uri,
        "subresource_uris": {
            name: uri.replace(".json", f"/{name}.json") for name in ("Notifications", "Recordings", "Events")
        },
    }


def queue_json(account_sid: str, queue: Queue) -> dict[str, Any]:
    """A Queue resource."""
    uri = f"{base(account_sid)}/Queues/{queue.sid}.json"
    return {
        "sid": queue.sid, "account_sid": account_sid, "friendly_name": queue.friendly_name,
        "current_size": len(queue.members), "max_size": queue.max_size, "average_wait_time": queue.average_wait_time(),
        "date_created": rfc2822(queue.date_created), "date_updated": rfc2822(datetime.now(UTC)),
        "uri": uri, "subresource_uris": {"members": uri.replace(".json", "/Members.json")},
    }


def member_json(account_sid: str, member: Member, position: int) -> dict[str, Any]:
    """A queue Member resource."""
    return {
        "call_sid": member.call_sid, "queue_sid": member.queue.sid, "position": position,
        "wait_time": member.wait_time(), "date_enqueued": rfc2822(member.date_enqueued),
        "uri": f"{base(account_sid)}/Queues/{member.queue.sid}/Members/{member.call_sid}.json",
    }


def conference_json(account_sid: str, conf: Conference) -> dict[str, Any]:
    """A Conference resource (https://www.twilio.com/docs/voice/api/conference-resource); "basic conference audio
    will always be mixed in us1"."""
    uri = f"{base(account_sid)}/Conferences/{conf.sid}.json"
    return {
        "account_sid": account_sid, "date_created": rfc2822(conf.created), "date_updated": rfc2822(conf.updated),
        "api_version": API_VERSION, "friendly_name": conf.friendly_name, "region": "us1", "sid": conf.sid,
        "status": conf.status, "uri": uri,
        "subresource_uris": {name.lower(): uri.replace(".json", f"/{name}.json") for name in ("Participants",
                                                                                             "Recordings")},
        "reason_conference_ended": conf.reason_ended, "call_sid_ending_conference": conf.call_sid_ending,
    }


def participant_json(account_sid: str, part: Participant, queue_time: str | None = None) -> dict[str, Any]:
    """A conference Participant resource (https://www.twilio.com/docs/voice/api/conference-participant-resource);
    queue_time only in the answer to a create."""
    conf = part.conference
    return {
        "account_sid": account_sid, "call_sid": part.call_sid, "label": part.label,
        "call_sid_to_coach": part.call_sid_to_coach, "coaching": part.coaching, "conference_sid": conf.sid,
        "date_created": rfc2822(part.created), "date_updated": rfc2822(part.updated),
        "end_conference_on_exit": part.end_on_exit, "muted": part.muted, "hold": part.hold,
        "start_conference_on_enter": part.start_on_enter, "status": part.status(), "queue_time": queue_time,
        "uri": f"{base(account_sid)}/Conferences/{conf.sid}/Participants/{part.call_sid}.json",
    }


def message_json(account_sid: str, msg: Message) -> dict[str, Any]:
    """A Message resource, as Twilio returns it on creation."""
    uri = f"{base(account_sid)}/Messages/{msg.sid}.json"
    return {
        "sid": msg.sid, "account_sid": account_sid, "to": msg.to, "from": msg.from_, "body": msg.body,
        "status": "queued", "direction": "outbound-api", "num_segments": "1", "num_media": "0",
        "api_version": API_VERSION, "date_created": rfc2822(msg.created), "date_updated": rfc2822(msg.created),
        "date_sent": None, "price": None, "price_unit": "USD", "error_code": None, "error_message": None,
        "messaging_service_sid": None, "uri": uri, "subresource_uris": {"media": uri.replace(".json", "/Media.json")},
    }


def page(key: str, items: list[dict[str, Any]], uri: str, page_size: int) -> dict[str, Any]:
    """A list response: everything on one page."""
    return {
        key: items, "uri": uri, "first_page_uri": f"{uri}?PageSize={page_size}&Page=0",
        "next_page_uri": None, "previous_page_uri": None, "page": 0, "page_size": page_size,
        "start": 0, "end": max(0, len(items) - 1),
    }
