"""The app factory: settings, stores and blueprints wired together."""
from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any, cast

from flask import Flask, Request, Response, jsonify
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from werkzeug.middleware.proxy_fix import ProxyFix

from core.config import Config
from core.context import attach, close_db
from core.services import Services, build_services
from core.settings import Settings, resolve, settings_from_env
from hotline.configuration import full_config
from webhooks.outbound.gateway import TwilioGateway

SHIFT = timedelta(hours=12)  # a console session lasts one long shift, then asks for the password again


def make_gateway(settings: Settings) -> TwilioGateway:
    """The Twilio REST gateway for these settings."""
    return TwilioGateway(
        settings.twilio_account_sid, settings.twilio_auth_token, settings.twilio_api_url, settings.twilio_number
    )


def load_settings(overrides: Mapping[str, Any] | None = None) -> Settings:
    """Env vars, then `overrides`, then blanks filled and the configuration file validated."""
    settings = resolve(settings_from_env().with_overrides(overrides))
    if settings.config is None:
        settings = settings.with_overrides({"config": full_config(settings.config_path or None)})
    return settings


def create_services(overrides: Mapping[str, Any] | None = None) -> Services:
    """Everything a process (web, worker, CLI) needs, built from the environment."""
    settings = load_settings(overrides)
    config = cast(Config, settings.config)  # load_settings always fills it
    return build_services(settings, config, make_gateway)


class ConsoleOnlySessions(SecureCookieSessionInterface):
    """The signed session cookie, for people only: Twilio's webhooks never carry one, so they skip it."""

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        """No session work on /voice/* (the hot path); the usual cookie session elsewhere."""
        if request.path.startswith("/voice/"):
            return self.null_session_class()
        return super().open_session(app, request)


def create_app(overrides: Mapping[str, Any] | None = None, services: Services | None = None) -> Flask:
    """Build the hotline's Flask app; `overrides` replace Settings fields (tests, CLI flags)."""
    svc = services or create_services(overrides)
    app = Flask(__name__, static_folder=None)  # the console blueprint serves its own files
    app.config.update(
        SECRET_KEY=svc.settings.secret_key,
        TESTING=svc.settings.testing,
        MAX_CONTENT_LENGTH=256 * 1024,  # Twilio's requests are small; anything bigger is not Twilio
        # The console's session cookie: signed, not readable by scripts, not sent on cross-site posts.
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=svc.settings.public_url.startswith("https://") and not svc.settings.testing,
        SESSION_COOKIE_NAME="hotline_session",
        PERMANENT_SESSION_LIFETIME=SHIFT,
    )
    app.session_interface = ConsoleOnlySessions()
    app.json.sort_keys = False  # type: ignore[attr-defined]  # tiers stay in their configured order (premium first)
    if svc.settings.trusted_proxies:
        n = svc.settings.trusted_proxies
        # Flask documents wrapping wsgi_app so; its annotation calls that assigning to a method.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n, x_port=n)  # type: ignore[method-assign]
    app.teardown_appcontext(close_db)

    from console.metrics import init_metrics
    from console.pages import bp as pages_bp
    from console.register import api_blueprint
    from webhooks.register import voice_blueprint

    app.register_blueprint(voice_blueprint())
    app.register_blueprint(api_blueprint())
    app.register_blueprint(pages_bp)
    attach(app, svc, init_metrics(app, svc))
    if svc.settings.bench:
        from hotline.benchmode import install  # only here: without bench mode nothing of it is loaded or hooked

        install(app, svc)

    @app.get("/healthz")
    def healthz() -> tuple[Response, int]:
        """Readiness: 200 when both stores answer, 503 naming the one that does not."""
        problems = svc_health(svc)
        return jsonify(status="ok" if not problems else "degraded", problems=problems), 503 if problems else 200

    return app


def svc_health(svc: Services) -> list[str]:
    """Which stores do not answer right now."""
    problems = []
    try:
        svc.redis.ping()
    except Exception as exc:  # noqa: BLE001 (any failure means "not ready": the reason is reported, not raised)
        problems.append(f"redis: {type(exc).__name__}")
    try:
        with svc.engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
    except Exception as exc:  # noqa: BLE001 (as above)
        problems.append(f"database: {type(exc).__name__}")
    return problems
