"""Who may do what: the one place that decides.

A ``Principal`` is whoever makes a request: anonymous, or a user with a role and grants
(a sponsor's trials, a coordinator's sites). Every route declares the permission it needs
with ``@requires(...)``; the web layer checks it before the view runs, and the tests walk
every route × role × own/other scope against ``can``.

Roles, least privilege first:

- anonymous: verify page, look-up by hash, one registration (by its unguessable id), login.
- coordinator: registers for its granted sites and reads their registrations; manages
  those sites' tokens.
- sponsor: reads every registration of its granted trials (dashboard, bundle, report);
  its own user tokens for the API's trial endpoints.
- admin: trials, sites, people, grants, tokens, batches, the audit trail; reads every
  trial. Registers nothing: registrations come from the sites.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from trialnotary.people.errors import UnknownPermission
from trialnotary.people.states import ROLES, TOKEN_ROLES, Role  # noqa: F401 (ROLES, from here too)

# Permissions a route can require.
PUBLIC = "public"
SIGNED_IN = "signed-in"
REGISTER = "register"                      # scope: site
READ_SITE = "read-site"                    # scope: site
READ_TRIAL = "read-trial"                  # scope: trial
MANAGE_SITE_TOKENS = "manage-site-tokens"  # scope: site
MANAGE_USER_TOKENS = "manage-user-tokens"
ADMIN = "admin"
SITE_TOKEN = "site-token"                  # the API's registration calls: a site token
PERMISSIONS = (PUBLIC, SIGNED_IN, REGISTER, READ_SITE, READ_TRIAL, MANAGE_SITE_TOKENS,
               MANAGE_USER_TOKENS, ADMIN, SITE_TOKEN)


@dataclass(frozen=True)
class Principal:
    user_id: int | None = None
    email: str | None = None
    role: str | None = None
    trials: frozenset[str] = frozenset()  # a sponsor's granted trials (registry ids)
    sites: frozenset[str] = frozenset()   # a coordinator's granted sites (codes)
    must_change_password: bool = False

    @property
    def signed_in(self) -> bool:
        return self.role is not None

    @property
    def actor(self) -> str:
        """How the audit trail names this principal."""
        return f"user:{self.user_id} {self.email}" if self.signed_in else "anonymous"


ANONYMOUS = Principal()


def can(principal: Principal, permission: str, *, trial: str | None = None,
        site: str | None = None) -> bool:
    """Whether ``principal`` holds ``permission`` on ``trial`` or ``site`` where scoped.

    A scoped permission asked without a scope means "could hold it for some trial or
    site" (the role alone): the view then shows only what the grants allow.
    """
    role = principal.role
    if permission == PUBLIC:
        return True
    if permission == SIGNED_IN:
        return role is not None
    if permission == ADMIN:
        return role == Role.ADMIN
    if permission == REGISTER:
        return role == Role.COORDINATOR and (site is None or site in principal.sites)
    if permission in (READ_SITE, MANAGE_SITE_TOKENS):
        return role == Role.ADMIN or (role == Role.COORDINATOR
                                      and (site is None or site in principal.sites))
    if permission == READ_TRIAL:
        return role == Role.ADMIN or (role == Role.SPONSOR
                                      and (trial is None or trial in principal.trials))
    if permission == MANAGE_USER_TOKENS:
        return role in TOKEN_ROLES
    if permission == SITE_TOKEN:
        return True  # decided by the site token itself, inside the call
    raise UnknownPermission(f"unknown permission {permission!r}")


def sees_every_trial(principal: Principal) -> bool:
    return principal.role == Role.ADMIN


@dataclass(frozen=True)
class Rule:
    """A route's permission, and which view argument (or query parameter) names its scope."""

    permission: str
    scope_arg: str | None = None


def requires(permission: str, scope_arg: str | None = None) -> Callable:
    """Declare what a view needs; checked before it runs (see ``web.check_access``)."""
    if permission not in PERMISSIONS:
        raise UnknownPermission(f"unknown permission {permission!r}")

    def mark(view):
        view.access_rule = Rule(permission, scope_arg)
        return view
    return mark


def rule_of(view) -> Rule | None:
    return getattr(view, "access_rule", None)


def scope_kind(permission: str) -> str | None:
    if permission in (REGISTER, READ_SITE, MANAGE_SITE_TOKENS):
        return "site"
    if permission == READ_TRIAL:
        return "trial"
    return None
