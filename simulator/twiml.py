"""Reading TwiML as Twilio does: check the answer, parse it, resolve its URLs."""
from __future__ import annotations

import urllib.parse
import xml.etree.ElementTree as ET

from simulator.errors import NotSimulated, TwimlRejected
from simulator.schema import TwimlInvalid, validate_twiml
from simulator.transport import Reply

# Twilio runs text/html answers as TwiML too; audio answers (which it would play) are not simulated.
TWIML_TYPES = {"application/xml", "text/xml", "text/html"}

# What an Enqueue waitUrl document may hold (Twilio's <Enqueue> documentation).
WAIT_VERBS = frozenset({"Play", "Say", "Pause", "Hangup", "Redirect", "Leave", "Gather"})


def document(reply: Reply, url: str, who: str) -> ET.Element:
    """The <Response> root of a webhook answer; TwimlRejected (with the body) when Twilio would refuse it."""
    def rejected(why: str) -> TwimlRejected:
        """The failure, with the answer attached."""
        return TwimlRejected(
            f"{who}: POST {url} {why}\n--- answer ({reply.status}, {reply.content_type!r}) ---\n{reply.body}"
        )

    if reply.status != 200:
        raise rejected(f"answered HTTP {reply.status}")
    mimetype = reply.content_type.split(";")[0].strip().lower()
    if mimetype not in TWIML_TYPES:
        raise rejected(f"answered {mimetype or 'no content type'}, not TwiML")
    try:
        root = ET.fromstring(reply.body)
    except ET.ParseError as exc:
        raise rejected(f"answered malformed XML ({exc})") from None
    if root.tag != "Response":
        raise rejected(f"answered <{root.tag}>, not <Response>")
    try:
        validate_twiml(reply.body)
    except TwimlInvalid as exc:
        raise TwimlRejected(f"{who}: POST {url} answered invalid TwiML: {exc}") from None
    return root


def resolve(doc_url: str, ref: str) -> str:
    """A TwiML URL made absolute against the URL of the document holding it, as Twilio does."""
    return urllib.parse.urljoin(doc_url, ref.strip())


def url_attr(el: ET.Element, name: str, doc_url: str) -> str | None:
    """The absolute form of an optional URL attribute."""
    value = el.get(name)
    return resolve(doc_url, value) if value and value.strip() else None


def method_attr(el: ET.Element, name: str = "method") -> str:
    """POST (Twilio's default); GET is valid TwiML but this simulator only posts."""
    method = (el.get(name) or "POST").upper()
    if method != "POST":
        raise NotSimulated(f"<{el.tag} {name}=\"{method}\">: the simulator only requests URLs with POST")
    return method


def number_attr(el: ET.Element, name: str, default: float) -> float:
    """A numeric attribute, or `default` when absent."""
    value = el.get(name)
    return float(value) if value not in (None, "") else default


def text(el: ET.Element) -> str:
    """An element's text, SSML children included, trimmed."""
    return "".join(el.itertext()).strip()


def speaking_seconds(words: str) -> float:
    """Roughly how long Twilio takes to say `words`: ~4 CJK characters or ~15 other characters a second."""
    cjk = sum(1 for ch in words if "\u3000" <= ch <= "\u9fff" or "\uff00" <= ch <= "\uffef")
    return max(1.0, cjk / 4.0 + (len(words) - cjk) / 15.0)
