"""The web console's pages: login and logout, the agent console, the supervisor dashboard and its history."""
from __future__ import annotations

import csv
import functools
import io
import logging
from collections.abc import Callable, Iterator
from typing import Any, TypeVar
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from flask import (
    Blueprint,
    Response,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    stream_with_context,
    url_for,
)

from callqueue.agents.logins import authenticate
from callqueue.live import presence
from callqueue.live.presence import PresenceError
from callqueue.reports import history
from console import i18n, stores
from console.auth import csrf_token, csrf_valid, current_identity
from core.context import db, services
from core.logs import log_event

log = logging.getLogger("hotline.console")
bp = Blueprint("pages", __name__, template_folder="templates", static_folder="static", static_url_path="/assets")

F = TypeVar("F", bound=Callable[..., Any])
HOME = {"agent": "pages.agent", "supervisor": "pages.supervisor"}


@bp.before_request
def remember_language() -> None:
    """?lang=zh|en on any page sets the interface language for the rest of the session."""
    code = i18n.wants_language()
    if code is not None:
        session["lang"] = code


CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
# With a real account the agent page's softphone (Twilio's Voice SDK, served from here) opens its signalling
# WebSocket to Twilio's default edge (the SDK's "roaming": wss://voice-js.roaming.twilio.com/signal); its media go
# over WebRTC, which CSP does not govern. Its sounds are our own file and its Insights upload is switched off
# (static/twiliodevice.js), so this is the only other origin any page may reach.
SOFTPHONE_CSP = CSP.replace("connect-src 'self'", "connect-src 'self' wss://voice-js.roaming.twilio.com")
SDK_FILE = "vendor/twilio-voice-sdk.min.js"  # @twilio/voice-sdk's dist/twilio.min.js, pinned: vendor/README.md
HEARTBEAT_MS = 10_000  # the console says it is there this often (presence.heartbeat_timeout_s is 60 s by default)


@bp.after_app_request
def page_headers(response: Response) -> Response:
    """Every file comes from this app (no CDN), pages cannot be framed, and nothing is sniffed."""
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    if response.mimetype == "text/html":
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("Cache-Control", "no-store")
    return response


@bp.app_context_processor
def page_globals() -> dict[str, Any]:
    """What every template may use: the text catalogue, the person, the CSRF token."""
    return {"t": i18n.t, "lang": i18n.lang, "label": i18n.label, "csrf_token": csrf_token,
            "me": current_identity, "catalogue": i18n.catalogue}


def _page_error(status: int, key: str) -> tuple[str, int]:
    return render_template("error.html", message=i18n.t(key), status=status), status


def page_role(*roles: str) -> Callable[[F], F]:
    """Pages for `roles`: strangers go to the login page, people of another role get 403."""

    def wrap(fn: F) -> F:
        @functools.wraps(fn)
        def inner(*args: Any, **kwargs: Any) -> Any:
            ident = current_identity()
            if ident is None:
                return redirect(url_for("pages.login", next=request.full_path.rstrip("?")))
            if ident.role not in roles:
                return _page_error(403, "forbidden")
            return fn(*args, **kwargs)

        return inner  # type: ignore[return-value]  # functools.wraps keeps fn's signature, not its type

    return wrap


def _safe_next(target: str | None) -> str | None:
    """Only a path on this site (never another host) may follow a login."""
    if not target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return None
    return target


@bp.get("/")
def home() -> Response:
    """The console's front door: the login page, or the person's own page."""
    ident = current_identity()
    if ident is None:
        return redirect(url_for("pages.login"))
    return redirect(url_for(HOME.get(ident.role, "pages.agent")))


@bp.get("/login")
def login() -> Any:
    """The login form."""
    return render_template("login.html", next=_safe_next(request.args.get("next")), error=None, login_name="")


@bp.post("/login")
def login_submit() -> Any:
    """Check the password; start a fresh session (new id, new CSRF token) on success."""
    nxt = _safe_next(request.form.get("next"))
    name, password = request.form.get("login", "").strip(), request.form.get("password", "")

    def again(key: str, status: int, **params: Any) -> tuple[str, int]:
        return render_template("login.html", next=nxt, error=i18n.t(key, **params), login_name=name), status

    if not csrf_valid():
        return again("csrf_failed", 400)
    if not name or not password:
        return again("login_missing", 400)
    svc = services()
    result = authenticate(db(), name, password, svc.clock())
    db().commit()  # failure counts and locks persist although the login is refused
    if result.identity is None:
        log_event(log, "console login refused", logging.WARNING, login=name[:64], reason=result.reason,
                  remote=request.remote_addr)
        if result.reason == "locked" and result.locked_until is not None:
            tz = ZoneInfo(svc.config["hotline"]["timezone"])
            return again("login_locked", 429, until=result.locked_until.astimezone(tz).strftime("%H:%M"))
        return again("login_bad", 401)
    lang = session.get("lang")
    session.clear()  # no fixation: whatever the browser held before logging in is gone
    session.permanent = True
    session["login"] = result.identity.login
    if lang:
        session["lang"] = lang
    csrf_token()
    log_event(log, "console login", login=result.identity.login, role=result.identity.role)
    return redirect(nxt or url_for(HOME.get(result.identity.role, "pages.agent")))


@bp.post("/logout")
def logout() -> Any:
    """End the session; an agent who was available or away goes offline so no call is routed to an empty desk."""
    if not csrf_valid():
        return _page_error(400, "csrf_failed")
    ident = current_identity()
    if ident is not None:
        svc = services()
        try:
            p = presence.get(svc.redis, ident.login, svc.clock())
            if p.state in ("available", "away"):
                presence.set_state(svc.redis, ident.login, "offline", svc.clock())
        except PresenceError:
            pass  # on a call: the call's own events move them; the session still ends
        log_event(log, "console logout", login=ident.login)
    lang = session.get("lang")
    session.clear()
    if lang:
        session["lang"] = lang
    return render_template("login.html", next=None, error=None, info=i18n.t("logged_out"), login_name="")


@bp.get("/agent")
@page_role("agent", "supervisor")
def agent() -> Response:
    """The agent console: state, the softphone with the caller's context, wrap-up, the line and own day."""
    svc = services()
    cfg = svc.config
    choices = [(key, i18n.label(labels, key)) for key, labels in cfg["console"]["dispositions"].items()]
    categories = {key: i18n.label(labels, key) for key, labels in cfg["categories"].items()}
    labels = {"categories": categories, "dispositions": dict(choices)}
    page = render_template("agent.html", dispositions=choices, poll_ms=cfg["console"]["poll_ms"], labels=labels,
                           heartbeat_ms=HEARTBEAT_MS, sdk_url=url_for("pages.static", filename=SDK_FILE),
                           silence_url=url_for("pages.static", filename="silence.wav"))
    response = Response(page, mimetype="text/html")
    if not svc.settings.offline:
        response.headers["Content-Security-Policy"] = SOFTPHONE_CSP
    return response


@bp.get("/supervisor")
@page_role("supervisor")
def supervisor() -> str:
    """The live dashboard: figures per tier and overall, agents, waiting callers, callbacks."""
    cfg = services().config
    categories = {key: i18n.label(labels, key) for key, labels in cfg["categories"].items()}
    return render_template("supervisor.html", poll_ms=cfg["console"]["poll_ms"], tier_labels=_tier_labels(),
                           categories=categories)


@bp.get("/supervisor/history")
@page_role("supervisor")
def history_page() -> Any:
    """The figures per 15-minute interval for a chosen day, as charts and a table."""
    svc = services()
    try:
        day = history.parse_day(request.args.get("date"), svc.config, svc.clock())
    except ValueError as exc:
        return render_template("error.html", message=str(exc), status=400), 400
    return render_template("history.html", day=day.isoformat(), tier_labels=_tier_labels())


@bp.get("/supervisor/export.csv")
@page_role("supervisor")
def export_csv() -> Any:
    """One CSV row per call record of the chosen day (numbers masked), streamed."""
    svc = services()
    try:
        day = history.parse_day(request.args.get("date"), svc.config, svc.clock())
    except ValueError as exc:
        return Response(f"{exc}\n", status=400, mimetype="text/plain")
    session_ = svc.sessions()  # its own session: the stream outlives the request's teardown

    def lines() -> Iterator[str]:
        out = io.StringIO()
        writer = csv.writer(out)
        try:
            yield "\ufeff"  # a BOM, so that spreadsheet programs read the Chinese text as UTF-8
            for row in history.export_rows(session_, day, svc.config):
                writer.writerow(row)
                yield out.getvalue()
                out.seek(0)
                out.truncate()
        finally:
            session_.close()

    log_event(log, "csv export", login=current_identity().login, date=day.isoformat())
    return Response(stream_with_context(lines()), mimetype="text/csv", headers={
        "Content-Disposition": f'attachment; filename="hotline-calls-{day.isoformat()}.csv"'})


def _tier_labels() -> dict[str, str]:
    return {name: i18n.label(spec.get("label"), name) for name, spec in services().config.tiers.items()}


@bp.get("/stores")
def store_status() -> Any:
    """The stores' state and the banner's text, for every console page (polled by static/stores.js).

    Needs a logged-in session but reads only its signed cookie, not the database: it must answer while
    the database is down.
    """
    if not session.get("login"):
        return redirect(url_for("pages.login", next=request.full_path.rstrip("?")))
    status = stores.check(services())
    count = status.get("captured_callbacks") or 0
    return jsonify({**status, "ok": not stores.banner_keys(status),
                    "message": " ".join(i18n.t(k, n=count) if k == "store_captured" else i18n.t(k)
                                        for k in stores.banner_keys(status))})


@bp.errorhandler(404)
def page_not_found(_exc: Any) -> tuple[str, int]:
    """An HTML 404 for people, not a bare Werkzeug page."""
    return _page_error(404, "not_found")
