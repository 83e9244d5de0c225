"""The admin's commands: trials, sites, site tokens, users. Each runs in one write
transaction, is written to the audit trail as ``cli:<os user>``, and refuses bad input in
one line (docs/cli.md).

Imports stay inside the commands: `verify` must start fast, without the server's modules.
"""

from __future__ import annotations

import click

from trialnotary.cli import instance
from trialnotary.people.states import ROLES


def _actor() -> str:
    """How the audit trail names whoever runs an admin command."""
    import getpass

    return f"cli:{getpass.getuser()}"


def _admin(action):
    """Run ``action(session)`` in one write transaction (the audit trail needs its lock)."""
    from trialnotary.db import write_session
    from trialnotary.validation import ValidationError

    with instance.busy_is_an_error(), \
            write_session(instance.engine(instance.settings())) as session:
        try:
            result = action(session)
        except ValidationError as exc:
            raise click.ClickException(f"{exc.field}: {exc.message}" if exc.field
                                       else exc.message) from None
        session.commit()
        return result


@click.group("trial")
def trial_group() -> None:
    """Trials."""


@trial_group.command("add")
@click.argument("trial")
@click.option("--title")
@click.option("--protocol-id", is_flag=True,
              help="TRIAL is a sponsor's protocol id, not (yet) a registry id.")
def trial_add(trial: str, title: str | None, protocol_id: bool) -> None:
    """Create a trial."""
    from trialnotary.people import sites

    created = _admin(lambda s: sites.add_trial(s, trial, title=title, protocol_id=protocol_id,
                                               actor=_actor()))
    click.echo(f"trial {created.registry_id} created")


@click.group("site")
def site_group() -> None:
    """Sites."""


@site_group.command("add")
@click.argument("trial")
@click.argument("site")
@click.option("--name")
def site_add(trial: str, site: str, name: str | None) -> None:
    """Create SITE if new and enrol it in TRIAL."""
    from trialnotary.people import sites

    _admin(lambda s: sites.add_site(s, trial, site, name=name, actor=_actor()))
    click.echo(f"site {site} enrolled in {trial.upper()}")


@click.group("token")
def token_group() -> None:
    """Site tokens."""


@token_group.command("create")
@click.argument("site")
@click.option("--expires-in", type=click.FloatRange(min=0, min_open=True), metavar="DAYS",
              help="Days until it expires [default: TRIALNOTARY_SITE_TOKEN_DAYS, 90].")
def token_create(site: str, expires_in: float | None) -> None:
    """Print a new token for SITE (shown once, stored only as a digest). It belongs to no
    person: it lives until it expires or is revoked."""
    from trialnotary.people import sites

    days = expires_in or instance.settings().site_token_days
    token = _admin(lambda s: sites.create_token(s, site, expires_in_days=days,
                                                actor=_actor()))
    click.echo(f"token for site {site}" + (f", expires in {days:g} days" if days
                                           else ", never expires") + " (shown once):",
               err=True)
    click.echo(token)


@token_group.command("revoke")
@click.argument("prefix")
def token_revoke(prefix: str) -> None:
    """Revoke the site or user token whose listed prefix is PREFIX (e.g. tn_site_AbC123)."""
    from trialnotary.people import provisioning

    _admin(lambda s: provisioning.revoke_token_by_prefix(s, prefix, actor=_actor()))
    click.echo(f"token {prefix}… revoked")


@click.group("user")
def user_group() -> None:
    """People who sign in to the web pages."""


@user_group.command("add")
@click.argument("email")
@click.option("--role", required=True, type=click.Choice([role.value for role in ROLES]))
@click.option("--name")
def user_add(email: str, role: str, name: str | None) -> None:
    """Create a user; print a temporary password (shown once) as the last line."""
    from trialnotary.people import accounts

    user, password = _admin(lambda s: accounts.create_user(s, email, role, name=name,
                                                            actor=_actor()))
    click.echo(f"user {user.email} ({role}) created; temporary password (shown once, to be "
               "changed at first sign-in):", err=True)
    click.echo(password)


def _existing_user(session, email: str):
    from trialnotary.people import accounts
    from trialnotary.validation import ValidationError

    user = accounts.find_user(session, email)
    if user is None:
        raise ValidationError("email", f"no user {email}")
    return user


@user_group.command("grant")
@click.argument("email")
@click.option("--trial", help="A trial, for a sponsor.")
@click.option("--site", help="A site, for a coordinator.")
def user_grant(email: str, trial: str | None, site: str | None) -> None:
    """Grant a sponsor a trial, or a coordinator a site."""
    from trialnotary.people import accounts

    _admin(lambda s: accounts.grant(s, _existing_user(s, email), trial=trial, site=site,
                                    actor=_actor()))
    click.echo(f"{email} may now see {'trial ' + trial.upper() if trial else 'site ' + site}")


@user_group.command("reset-password")
@click.argument("email")
def user_reset_password(email: str) -> None:
    """Set a new temporary password (printed once) and end the user's sessions."""
    from trialnotary.people import accounts, passwords

    def reset(session):
        user = _existing_user(session, email)
        password = passwords.generated_password()
        accounts.set_password(session, user, password, actor=_actor(), temporary=True)
        return password

    password = _admin(reset)
    click.echo(f"temporary password for {email} (shown once):", err=True)
    click.echo(password)


COMMANDS = (trial_group, site_group, token_group, user_group)
