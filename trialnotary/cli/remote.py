"""The commands that never open the notary's database, run by trial sites and reviewers
anywhere: ``submit`` and ``receipt`` talk to a server over HTTP, ``verify`` and
``timeline`` to chain nodes (docs/cli.md).

Imports stay inside the commands: `verify` must start fast, without the server's modules.
"""

from __future__ import annotations

import sys

import click


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--trial", required=True)
@click.option("--site", required=True)
@click.option("--kind", default="dataset", show_default=True)
@click.option("--dataset", help="Label; defaults to the file name, or the folder's name.")
@click.option("--supersedes", metavar="ID", help="The registration this one corrects.")
@click.option("--reason", help="Why it is corrected (with --supersedes); kept in the audit "
                               "trail.")
@click.option("--not-before", metavar="JSON",
              help="A block the files were made after: the notBefore that `trialnotary "
                   "beacon` prints, bound into each record.")
@click.option("--wait", is_flag=True, help="Wait for the receipts.")
@click.option("--out", type=click.Path(file_okay=False), help="Save receipts here.")
@click.option("--json", "as_json", is_flag=True)
@click.option("--server", envvar="TRIALNOTARY_SERVER_URL", default="http://127.0.0.1:5000",
              show_default=True)
@click.option("--token", envvar="TRIALNOTARY_TOKEN", required=True)
def submit(**options) -> None:
    """Hash files or folders locally and register them."""
    from trialnotary.cli import client

    sys.exit(client.run(**options))


@click.command()
@click.argument("registration_id", metavar="ID")
@click.option("-o", "--out", "output", metavar="FILE|DIR", type=click.Path(),
              help="Save the receipt as FILE, or in DIR under its download name (a folder "
                   "that exists, or a name ending with /).")
@click.option("--server", envvar="TRIALNOTARY_SERVER_URL", default="http://127.0.0.1:5000",
              show_default=True)
def receipt(registration_id: str, output: str | None, server: str) -> None:
    """Fetch a receipt from the server: printed to stdout, or saved with -o."""
    from trialnotary.cli import receipts

    sys.exit(receipts.fetch_receipt(server, registration_id, output))


@click.command()
@click.argument("receipt_paths", metavar="RECEIPT...", nargs=-1, required=True,
                type=click.Path(dir_okay=False))
@click.option("--file", "file_path", type=click.Path(exists=True, dir_okay=False),
              help="The file the receipt was issued for (with one receipt only).")
@click.option("--rpc", "rpc_urls", multiple=True, metavar="URL",
              help="A chain node (http or https); repeat for several.")
@click.option("--confirmations", metavar="N|finalized",
              help="A number, or 'finalized'. Default: finalized on Ethereum mainnet, "
                   "Sepolia and Hoodi; 1 on other chains.")
@click.option("--notary", metavar="URL|FILE",
              help="Pin the origin with the notary's identity: its base URL, the URL of its "
                   "/.well-known/trialnotary.json, or a saved copy (https, or http to this "
                   "machine).")
@click.option("--expect-sender", metavar="ADDR", help="Pin the notary's anchoring address.")
@click.option("--tsa-ca", "tsa_ca", multiple=True, metavar="FILE",
              type=click.Path(dir_okay=False),
              help="PEM certificate(s) an RFC 3161 time-stamp authority must chain to; "
                   "repeat for several.")
@click.option("--require", "require", multiple=True, metavar="NAME|all",
              help="An anchor that must be checked ('all': every anchor of the receipt); "
                   "repeat for several.")
@click.option("--json", "as_json", is_flag=True,
              help="One JSON object; a list of them with several receipts.")
def verify(receipt_paths, file_path, rpc_urls, confirmations, notary, expect_sender,
           tsa_ca, require, as_json) -> None:
    """Check receipts (and a file) step by step, the verdict first.

    Exit 0 if every check passed and the origin is pinned (--notary or --expect-sender), 1
    if a check failed, 2 for unusable input (or a notary identity that cannot be read), 3 if
    every check passed but the origin is not pinned, 4 if no chain node answered. With
    several receipts the worst wins (2 > 1 > 4 > 3 > 0).
    """
    from trialnotary.proof import verify as verifier

    sys.exit(verifier.main(receipt_paths, file_path=file_path, rpc_urls=list(rpc_urls),
                           confirmations=confirmations, expect_sender=expect_sender,
                           notary=notary, as_json=as_json, tsa_ca=tsa_ca,
                           require=require))


@click.command()
@click.argument("paths", metavar="RECEIPT...|BUNDLE.zip", nargs=-1, required=True,
                type=click.Path(dir_okay=False))
@click.option("--rpc", "rpc_urls", multiple=True, metavar="URL",
              help="A chain node (http or https); repeat for several.")
@click.option("--confirmations", metavar="N|finalized",
              help="As for verify: by default what each receipt's chain calls for.")
@click.option("--notary", metavar="URL|FILE",
              help="Pin the origin with the notary's identity, as for verify.")
@click.option("--expect-sender", metavar="ADDR", help="Pin the notary's anchoring address.")
@click.option("--tsa-ca", "tsa_ca", multiple=True, metavar="FILE",
              type=click.Path(dir_okay=False),
              help="PEM certificate(s) an RFC 3161 time-stamp authority must chain to.")
@click.option("--json", "as_json", is_flag=True,
              help='One JSON object: {"ok", "entries", "checks"}.')
def timeline(paths, rpc_urls, confirmations, notary, expect_sender, tsa_ca, as_json) -> None:
    """Verify every receipt (or a receipts zip) and print the trial's proven timeline and
    its pre-specification checks (was the SAP fixed before the lock?).

    Exit codes as for verify; 1 also when a rule fails.
    """
    from trialnotary.proof.verify import timeline_command

    sys.exit(timeline_command.main(paths, rpc_urls=list(rpc_urls),
                                   confirmations=confirmations, expect_sender=expect_sender,
                                   notary=notary, tsa_ca=tsa_ca, as_json=as_json))


@click.command("upgrade-receipts")
@click.argument("paths", metavar="FILE...", nargs=-1, required=True,
                type=click.Path(exists=True, dir_okay=False))
@click.option("--server", envvar="TRIALNOTARY_SERVER_URL", default="http://127.0.0.1:5000",
              show_default=True)
def upgrade_receipts(paths: tuple[str, ...], server: str) -> None:
    """Replace saved receipts by the notary's fullest ones (anchors confirmed since, chain
    evidence, renewals), keeping each old file as FILE.bak. A receipt of another record or
    root, or one that drops an anchor, is refused (exit 1)."""
    from trialnotary.cli import upgrade

    sys.exit(upgrade.upgrade_receipts(server, list(paths)))


@click.command()
@click.option("--server", envvar="TRIALNOTARY_SERVER_URL", default="http://127.0.0.1:5000",
              show_default=True)
@click.option("--derive", "label", metavar="SEED-LABEL",
              help="Also derive a seed for this label (a randomisation seed, an unblinding "
                   "key): SHA-256 of the RFC 8785 JSON of {beacon, label}.")
def beacon(server: str, label: str | None) -> None:
    """Print the notary's beacon (its newest confirmed block) as JSON: give it as a record's
    notBefore. With --derive, a seed no one could have known before that block."""
    from trialnotary.cli import beacon as beacons

    sys.exit(beacons.run(server, label))


COMMANDS = (submit, receipt, verify, timeline, upgrade_receipts, beacon)
