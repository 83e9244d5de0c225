"""The ``trialnotary`` command: one group, its commands in modules by who runs them.

``remote`` (submit, receipt, beacon, verify, timeline: no database) is the client's, and needs
only what ``pip install trialnotary`` brings. ``operator`` (serve, worker, up, db, seal-now, check,
audit, chain) and ``admin`` (trial, site, token, user) run the notary: they need the
``server`` extra, and without it say so in one line (``server_extra``). Every command reads
the same configuration as the server; docs/cli.md describes each one.
"""

from __future__ import annotations

import click

from trialnotary.cli import admin, operator, remote
from trialnotary.cli.server_extra import INSTALL_THE_SERVER, requiring_the_server


@click.group(help=f"""trialnotary: register SHA-256 hashes of trial data, anchor them, verify
receipts.

\b
verify, timeline, submit, receipt and beacon need only `pip install trialnotary`;
the other commands run the notary and need `{INSTALL_THE_SERVER}`.""")
@click.version_option(package_name="trialnotary")
def main() -> None:
    pass


for _command in remote.COMMANDS:
    main.add_command(_command)
for _command in (*operator.COMMANDS, *admin.COMMANDS):
    main.add_command(requiring_the_server(_command))
