"""The commands that run the notary need the packages of the ``server`` extra; the client's
(``verify``, ``submit``, ``receipt``) need only what ``pip install trialnotary`` brings.

Run without them, a server command refuses in one line, naming the install that brings them,
before it does anything; its ``--help`` still works. Which packages those are is read from
the installed package's own metadata (setup.cfg's ``server`` extra), so it is stated once.
"""

from __future__ import annotations

import functools
import re

import click

INSTALL_THE_SERVER = "pip install 'trialnotary[server]'"

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_OF_THE_SERVER = re.compile(r"""\bextra\s*==\s*["']server["']""")


def missing_server_packages() -> list[str]:
    """The distributions of the ``server`` extra that are not installed. None when the
    package itself is not installed (run from a source tree): nothing says what it needs."""
    import importlib.metadata  # here, not on every start: it would slow `verify` down

    try:
        requirements = importlib.metadata.requires("trialnotary") or []
    except importlib.metadata.PackageNotFoundError:
        return []
    missing = []
    for requirement in requirements:
        wanted, _, marker = requirement.partition(";")
        if not _OF_THE_SERVER.search(marker):
            continue
        name = _NAME.match(wanted.strip()).group()
        try:
            importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            missing.append(name)
    return missing


def refusal(command_path: str, missing: list[str]) -> str:
    named = ", ".join(missing[:3]) + (", …" if len(missing) > 3 else "")
    return (f"`{command_path}` runs the notary, whose packages are not installed ({named}): "
            f"{INSTALL_THE_SERVER}")


def requiring_the_server(command: click.Command) -> click.Command:
    """``command``, or each command of a group (at any depth), refuses to run while the
    server's packages are missing. Returns ``command``, changed in place."""
    if isinstance(command, click.Group):
        for subcommand in command.commands.values():
            requiring_the_server(subcommand)
        return command
    run = command.callback

    @functools.wraps(run)
    def run_if_installed(*args, **kwargs):
        missing = missing_server_packages()
        if missing:
            raise click.ClickException(refusal(click.get_current_context().command_path,
                                               missing))
        return run(*args, **kwargs)

    command.callback = run_if_installed
    return command
