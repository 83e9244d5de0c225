"""The tokens page: a coordinator's site tokens and a sponsor's or admin's user tokens,
created (shown once) and revoked."""

from __future__ import annotations

from collections.abc import Callable

from flask import abort, flash, redirect, render_template, request, url_for

from trialnotary.db import write_session
from trialnotary.notary import overview
from trialnotary.people import access, sites, user_tokens
from trialnotary.people.access import requires
from trialnotary.people.states import Role
from trialnotary.validation import ValidationError
from trialnotary.web.auth import current_principal, show_after_redirect, take_shown_once
from trialnotary.web.context import db_session, services
from trialnotary.web.pages.blueprint import bp

#: The token forms' fields as their labels name them, for messages.
TOKEN_FIELDS = {"name": "Name", "expires_in_days": "Expires in days", "site": "Site"}


@bp.get("/tokens")
@requires(access.SIGNED_IN)
def tokens():
    """The principal's tokens (never their values); a token just created is shown on the
    page its form redirects to, this once only. Pages of signed-in people are never
    cached."""
    principal = current_principal()
    session = db_session()
    site_tokens = sites.tokens_of_sites(session, principal.sites) \
        if principal.role == Role.COORDINATOR else []
    own_tokens = user_tokens.tokens_of_user(session, principal.user_id) \
        if access.can(principal, access.MANAGE_USER_TOKENS) else []
    return render_template("tokens.html", site_tokens=site_tokens, user_tokens=own_tokens,
                           sites=sorted(principal.sites),
                           new_tokens=take_shown_once("token"),
                           site_token_days=services().settings.site_token_days)


def _expiry_days() -> float | None:
    raw = request.form.get("expires_in_days", "").strip()
    if not raw:
        return None
    try:
        days = float(raw)
    except ValueError:
        days = 0
    if not 0 < days <= 3650:
        raise ValidationError("expires_in_days", "must be a number of days from 1 to 3650")
    return days


def _create_token(create, scope: str):
    """Create a token with ``create(session)`` and show it once on the tokens page."""
    try:
        with write_session(services().engine) as session:
            token = create(session)
            show_after_redirect(session, token, "token", scope=scope)
            session.commit()
    except ValidationError as exc:
        flash(f"{TOKEN_FIELDS.get(exc.field, exc.field)}: {exc.message}", "error")
        return redirect(url_for("web.tokens"))
    flash(f"A token for {scope} is created. Copy it now: it is shown only this once.",
          "success")
    return redirect(url_for("web.tokens") + "#new-token")


@bp.post("/tokens/site")
@requires(access.MANAGE_SITE_TOKENS, "site")
def create_site_token():
    principal = current_principal()
    site = request.form.get("site", "")
    return _create_token(lambda session: sites.create_token(
        session, site, expires_in_days=_expiry_days() or services().settings.site_token_days,
        name=request.form.get("name") or None, created_by_id=principal.user_id,
        actor=principal.actor), f"site {site}")


@bp.post("/tokens/user")
@requires(access.MANAGE_USER_TOKENS)
def create_user_token():
    principal = current_principal()

    def create(session):
        return user_tokens.create_user_token(session, overview.user(session, principal.user_id),
                                          name=request.form.get("name") or None,
                                          expires_in_days=_expiry_days(),
                                          actor=principal.actor)
    return _create_token(create, "reading your trials through the API")


@bp.post("/tokens/site/<int:token_id>/revoke")
@requires(access.MANAGE_SITE_TOKENS)
def revoke_site_token(token_id: int):
    def may_revoke(session, token) -> bool:
        site = sites.site_code_of(session, token.site_id)
        return site is not None and \
            access.can(current_principal(), access.MANAGE_SITE_TOKENS, site=site)
    return _revoke(token_id, find=overview.site_token, may_revoke=may_revoke,
                   revoke=sites.revoke_token)


@bp.post("/tokens/user/<int:token_id>/revoke")
@requires(access.MANAGE_USER_TOKENS)
def revoke_user_token(token_id: int):
    def may_revoke(_session, token) -> bool:
        principal = current_principal()
        return token.user_id == principal.user_id or access.can(principal, access.ADMIN)
    return _revoke(token_id, find=overview.user_token, may_revoke=may_revoke,
                   revoke=user_tokens.revoke_user_token)


def _revoke(token_id: int, *, find: Callable, may_revoke: Callable, revoke: Callable):
    """Revoke the token ``find`` finds, if the principal ``may_revoke`` it; any other id is
    answered 404, as if unknown, so that ids reveal nothing."""
    principal = current_principal()
    with write_session(services().engine) as session:
        token = find(session, token_id)
        if token is None or not may_revoke(session, token):
            abort(404)
        revoke(session, token_id, actor=principal.actor)
        session.commit()
    flash(f"Token {token.prefix}… is revoked: the API refuses it from now on.", "success")
    return _back_to_tokens()


def _back_to_tokens():
    """Back to the list the revoke button was on: the admin's or the principal's own."""
    return redirect(url_for("admin.tokens") if request.form.get("back") == "admin"
                    and access.can(current_principal(), access.ADMIN)
                    else url_for("web.tokens"))
