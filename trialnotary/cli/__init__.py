"""The ``trialnotary`` command: one group, its commands in modules by who runs them.

``operator`` (serve, worker, up, db, seal-now, check, audit, chain), ``admin`` (trial,
site, token, user) and ``remote`` (submit, receipt, verify: no database). Every command
reads the same configuration as the server; docs/cli.md describes each one.
"""

from __future__ import annotations

import click

from trialnotary.cli import admin, operator, remote


@click.group()
@click.version_option(package_name="trialnotary")
def main() -> None:
    """trialnotary: register SHA-256 hashes of trial data, anchor them, verify receipts."""


for _command in (*operator.COMMANDS, *admin.COMMANDS, *remote.COMMANDS):
    main.add_command(_command)
