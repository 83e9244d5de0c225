"""``trialnotary upgrade-receipts FILE…``: bring saved receipts up to date with the notary's
fullest receipt (anchors confirmed since, chain evidence, renewals of a retired chain).

A saved receipt is replaced only by one of the same record, leaf and ``merkleRoot`` that
keeps every anchor it had, unchanged: the new one only adds. The old file is kept beside
it (``FILE.bak``, or ``FILE.<n>.bak`` when that exists), and the new one is written as the
notary served it, atomically.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

from trialnotary.cli.api import Api
from trialnotary.cli.errors import EXIT_ERROR, EXIT_OK, CliError, ServerRefused
from trialnotary.cli.receipts import save_receipt

#: What must be the same in the saved receipt and the notary's (by their keys' paths).
SAME = (("trialnotary", "record"), ("targetHash",), ("merkleRoot",))


def upgrade_receipts(server: str, paths: list[str]) -> int:
    """Upgrade each file, printing what changed; 0 when every file is up to date or
    upgraded, 1 when one could not be (it is then left as it was)."""
    api = Api(server)
    worst = EXIT_OK
    try:
        for path in paths:
            try:
                print(f"{path}: {upgrade_file(api, Path(path))}")
            except (CliError, OSError) as exc:
                print(f"{path}: not upgraded: {exc}", file=sys.stderr)
                worst = EXIT_ERROR
    finally:
        api.close()
    return worst


def upgrade_file(api: Api, path: Path) -> str:
    """Replace the receipt at ``path`` by the notary's, if that one adds to it; what
    changed. ``CliError`` when it cannot or must not be replaced."""
    saved = _read(path)
    try:
        registration_id = saved["trialnotary"]["record"]["id"]
    except (KeyError, TypeError):
        raise CliError("not a trialnotary receipt (no trialnotary.record.id)") from None
    response = api.get_receipt(str(registration_id))
    if response.status_code != 200:
        raise ServerRefused.from_response(response)
    try:
        fresh = response.json()
    except ValueError:
        raise CliError("the notary's answer is not JSON") from None
    changes = what_changed(saved, fresh)
    if not changes:
        return "up to date"
    backup = backup_path(path)
    shutil.copy2(path, backup)
    save_receipt(response, path)
    return f"upgraded: {'; '.join(changes)} (the old one kept as {backup.name})"


def _read(path: Path) -> dict:
    try:
        saved = json.loads(path.read_bytes())
    except ValueError as exc:
        raise CliError(f"not JSON ({exc})") from None
    if not isinstance(saved, dict):
        raise CliError("not a receipt (not a JSON object)")
    return saved


def what_changed(saved: dict, fresh: dict) -> list[str]:
    """What ``fresh`` adds to ``saved`` (nothing: ``[]``). ``CliError`` when it is another
    receipt (record, leaf or root), or when it lacks or changes an anchor ``saved`` has."""
    for keys in SAME:
        if _at(saved, keys) != _at(fresh, keys):
            raise CliError(f"the notary's receipt has another {'.'.join(keys)}: refused, "
                           "the saved one is kept")
    changes = []
    old_version = _at(saved, ("trialnotary", "receiptVersion"))
    new_version = _at(fresh, ("trialnotary", "receiptVersion"))
    if old_version != new_version:
        changes.append(f"receipt version {old_version} → {new_version}")
    fresh_entries = {_identity(entry): entry for entry in _entries(fresh)}
    for entry in _entries(saved):
        kept = fresh_entries.pop(_identity(entry), None)
        if kept is None:
            raise CliError(f"the notary's receipt lacks the anchor {_label(entry)}: refused, "
                           "the saved one is kept")
        changes += _added_to(entry, kept)
    changes += [f"+ anchor {_label(entry)}" for entry in fresh_entries.values()]
    return changes


def _added_to(old: dict, new: dict) -> list[str]:
    """What an anchor gained; ``CliError`` when it changed what it said. A renewal may
    gain anchors (more of the remaining anchors confirmed it since)."""
    changed = sorted(key for key in old if key not in new or new[key] != old[key])
    added = []
    if "renewal" in changed and isinstance(new.get("renewal"), dict):
        added = _renewal_grown(old, new)
        changed.remove("renewal")
    if changed:
        raise CliError(f"the notary's receipt changes {', '.join(changed)} of the anchor "
                       f"{_label(old)}: refused, the saved one is kept")
    for key in sorted(set(new) - set(old)):
        if key == "renewal":
            through = ", ".join(_label(entry) for entry in new["renewal"].get("anchors", []))
            added.append(f"+ renewal of {_label(new)} through {through}")
        elif key != "name":
            added.append(f"+ {key} of {_label(new)}")
    return added


def _renewal_grown(old: dict, new: dict) -> list[str]:
    """The anchors a renewal gained; ``CliError`` when it is another renewal."""
    before, after = old["renewal"], new["renewal"]
    if not isinstance(before, dict) or any(before.get(key) != after.get(key)
                                           for key in ("evidenceDigest", "proof", "root")):
        raise CliError(f"the notary's receipt has another renewal of the anchor "
                       f"{_label(old)}: refused, the saved one is kept")
    grown = what_changed({"anchors": before.get("anchors")},
                         {"anchors": after.get("anchors")})
    return [f"{change} in the renewal of {_label(new)}" for change in grown]


def _entries(receipt: dict) -> list[dict]:
    anchors = receipt.get("anchors")
    if not isinstance(anchors, list) or not all(isinstance(e, dict) for e in anchors):
        raise CliError("not a receipt (no list of anchors)")
    return anchors


def _identity(entry: dict) -> tuple:
    """What one anchor is, whatever else its entry grows: its transaction or its token."""
    return entry.get("type"), entry.get("sourceId") or entry.get("token")


def _label(entry: dict) -> str:
    name = entry.get("name")
    where = f"0x{entry['sourceId']}" if entry.get("sourceId") else "time-stamp"
    return f"{name} ({where})" if name else where


def _at(value, keys: tuple[str, ...]):
    for key in keys:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def backup_path(path: Path) -> Path:
    """``FILE.bak``, or the first ``FILE.<n>.bak`` that does not exist yet."""
    candidate = path.with_name(path.name + ".bak")
    number = 1
    while candidate.exists():
        candidate = path.with_name(f"{path.name}.{number}.bak")
        number += 1
    return candidate
