"""The web pages' protections: CSRF on every form, strict response headers, cookie flags,
proxy headers, the host names the notary answers to, and rate limits whose counters live
in shared storage.

The JSON API is token-only (no cookies), so it is exempt from CSRF.
"""

from __future__ import annotations

import math
import time

from flask import Flask, g, request
from flask_wtf.csrf import CSRFProtect
from limits import parse, storage, strategies
from werkzeug.exceptions import BadRequest
from werkzeug.middleware.proxy_fix import ProxyFix

from trialnotary.config import ANY_HOST, PREFIX, ConfigError, Settings, host_name

csrf = CSRFProtect()

# Content Security Policy: our own scripts and styles only. WebAssembly (the streaming
# SHA-256) needs 'wasm-unsafe-eval'; the verify page widens connect-src because it talks
# to whichever chain node the reviewer chooses, never to us.
CSP = ("default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; "
       "img-src 'self' data:; worker-src 'self'; object-src 'none'; base-uri 'none'; "
       "form-action 'self'; frame-ancestors 'none'; connect-src {connect}")


class RateLimiter:
    """Fixed-window limits per key, in the configured storage (``memory://`` for one
    process; ``redis://host:port`` for several)."""

    def __init__(self, storage_url: str):
        self.storage = storage.storage_from_string(storage_url)
        self.strategy = strategies.FixedWindowRateLimiter(self.storage)

    def hit(self, limit: str, *key: str) -> float | None:
        """Count one hit; ``None`` if allowed, else the seconds until the window resets."""
        item = parse(limit)
        if self.strategy.hit(item, *key):
            return None
        reset = self.strategy.get_window_stats(item, *key).reset_time
        return max(1.0, reset - time.time())


def rate_limiter() -> RateLimiter:
    from flask import current_app

    return current_app.extensions["trialnotary.ratelimit"]


def anonymous_lookup_wait(settings: Settings, signed_in: bool,
                          scope: str = "lookup") -> int | None:
    """Count an anonymous look-up against its address, in its ``scope`` (by hash; a public
    timeline); ``None`` if allowed, else the whole seconds to wait. Anyone who can compute a
    file's hash (an empty file, a published template) learns its registrations, so guessing
    is slowed like sign-in; a public timeline's pages and zip are built from a whole trial,
    so they are slowed alike. Signed-in people and user tokens are not limited."""
    if signed_in:
        return None
    wait = rate_limiter().hit(settings.lookup_rate_limit, scope, request.remote_addr or "-")
    return None if wait is None else math.ceil(wait)


class UnknownHost(BadRequest):
    """A request whose ``Host`` (or trusted ``X-Forwarded-Host``) is not one the notary
    answers to: its pages would carry that name in QR codes, receipts and links."""

    api_code = "unknown_host"


def host_allowed(host: str, allowed: tuple[str, ...]) -> bool:
    """Whether a ``Host`` value names an allowed host, on any port. ``.example.org`` allows
    it and its subdomains; ``*`` any host."""
    if ANY_HOST in allowed:
        return True
    name = host_name(host)
    return name is not None and any(
        name == entry or (entry.startswith(".") and (name == entry[1:] or name.endswith(entry)))
        for entry in allowed)


def _refuse_unknown_hosts(allowed: tuple[str, ...]):
    def check():
        if not host_allowed(request.host, allowed):
            raise UnknownHost("This server does not answer to that host name. Use its "
                              "address as the notary's administrator published it.")
    return check


def _headers(response):
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault(
        "Content-Security-Policy", CSP.format(connect=g.get("csp_connect", "'self'")))
    if g.get("principal") is not None and g.principal.signed_in:
        response.headers.setdefault("Cache-Control", "no-store")
    if request.is_secure:
        response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
    return response


def init_app(app: Flask, settings: Settings) -> None:
    app.config.update(
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.secure_cookies,
        SESSION_COOKIE_NAME="tn_flask",
        WTF_CSRF_TIME_LIMIT=None,  # tied to the session instead
    )
    if not settings.allowed_hosts:
        raise ConfigError(f"{PREFIX}PUBLIC_URL (or {PREFIX}ALLOWED_HOSTS) is required on "
                          f"chain {settings.chain!r}: the host names this server answers to, "
                          "which its links, QR codes and receipts carry")
    csrf.init_app(app)
    app.extensions["trialnotary.ratelimit"] = RateLimiter(settings.ratelimit_storage_url)
    if settings.trusted_proxies:
        hops = settings.trusted_proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)
    app.before_request(_refuse_unknown_hosts(settings.allowed_hosts))
    app.after_request(_headers)
