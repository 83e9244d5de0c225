"""Administration by the names an operator types: a token by the prefix the lists show.
The ``trialnotary`` admin commands call these (see docs/cli.md)."""

from __future__ import annotations

from sqlmodel import Session, select

from trialnotary.people import sites, user_tokens
from trialnotary.people.models import SiteToken, UserToken
from trialnotary.validation import ValidationError


def revoke_token_by_prefix(session: Session, prefix: str, *, actor: str) -> None:
    """Revoke the one site or user token listed under ``prefix`` (e.g. ``tn_site_AbC123``).
    A prefix that names no token, or several, is a ``ValidationError`` on ``prefix``:
    several are told apart only in the admin pages."""
    found = ([("site", row) for row in _with_prefix(session, SiteToken, prefix)]
             + [("user", row) for row in _with_prefix(session, UserToken, prefix)])
    if len(found) != 1:
        raise ValidationError("prefix", "names no token" if not found
                              else "names several tokens: revoke them in the admin pages")
    kind, token = found[0]
    if kind == "site":
        sites.revoke_token(session, token.id, actor=actor)
    else:
        user_tokens.revoke_user_token(session, token.id, actor=actor)


def _with_prefix(session: Session, table, prefix: str) -> list:
    return list(session.exec(select(table).where(table.prefix == prefix)))
