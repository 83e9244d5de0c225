"""A trial's proven timeline and its pre-specification checks, from verified receipts.

Pure logic: given each receipt's record and the time its verification proved (or why it
did not verify), order the registrations by proven time, link their versions (the chain of
``supersedes``) and judge the rules below. No I/O, no Flask, no database: the command
(:mod:`trialnotary.proof.verify.timeline_command`) verifies, the server's pages may reuse it.

The rules are stated once, in facts.json (:data:`RULES` here, static/js/timeline.js in the
browser), with what each proves and what it cannot (docs/verification.md, "Was it
pre-specified?"). Their words:

- **final**: the newest version of its ``supersedes`` chain (the version no receipt given
  supersedes);
- **before**: a strictly earlier proven time (whole seconds);
- **n/a**: a rule whose kinds are absent from the receipts judges nothing (``ok`` is
  ``None``) and fails nothing;
- an entry whose receipt did not verify has no proven time: a rule that needs it fails,
  and says which receipt;
- receipts given that hold the same record id are no version chain: a rule over their kind
  fails, and says which receipts.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from trialnotary.proof.facts import (
    SIGN_OFF_KIND,
    TIMELINE_RULES,
    TIMELINE_SIGN_OFF_RULE,
    TIMELINE_UNUSABLE,
)
from trialnotary.proof.receipt import record_leaf


@dataclass(frozen=True)
class Rule:
    """A pre-specification rule: the entries of kind ``earlier`` (only the final versions
    when ``final_only``) must be proven before the first of kind ``later`` (of each site,
    when ``per_site``)."""

    name: str
    earlier: str
    later: str
    final_only: bool
    per_site: bool
    statement: str
    proves: str
    cannot_prove: str


#: The rules, as facts.json states them (the browser's timeline reads the same).
RULES = tuple(Rule(rule["name"], rule["earlier"], rule["later"], rule["finalOnly"],
                   rule["perSite"], rule["statement"], rule["proves"], rule["cannotProve"])
              for rule in TIMELINE_RULES)
#: The state of an entry whose receipt could not be read or parsed (no verdict was reached).
UNUSABLE: str = TIMELINE_UNUSABLE


#: Sign-offs (docs/receipt.md, "Sign-offs") are judged apart: each names a registration given.
SIGN_OFF = SIGN_OFF_KIND
#: How a sign-off check names an id or a leaf the sign-off does not give.
NOTHING = "(none)"
SIGNS = Rule(TIMELINE_SIGN_OFF_RULE["name"], SIGN_OFF, "", False, False,
             TIMELINE_SIGN_OFF_RULE["statement"], TIMELINE_SIGN_OFF_RULE["proves"],
             TIMELINE_SIGN_OFF_RULE["cannotProve"])


@dataclass(frozen=True)
class Verified:
    """One receipt as the verifier left it: its record (``None`` for a plain Chainpoint
    receipt or an unusable file), the proven time when it verified, its verdict state and,
    when it did not verify, why; ``made_after``: the block its record's ``notBefore`` names,
    with its ``blockTime``, once the ``not-before`` step passed (the verifier's report's
    ``made_after``, ``madeAfter`` of ``verify --json``): the start of the interval."""

    source: str
    record: dict | None
    proven_time: str | None
    state: str
    why: str | None = None
    made_after: dict | None = None


@dataclass
class Entry:
    """One receipt in the timeline, with its place in its version chain: ``chain`` is the
    id of the first version given, ``version`` its position (1 = that first), ``versions``
    how many the chain holds, ``superseded_by`` the next version's id."""

    verified: Verified
    chain: str | None = None
    version: int = 1
    versions: int = 1
    superseded_by: str | None = None
    predecessor_missing: bool = False
    sign_offs: list[str] = field(default_factory=list)
    # Read once from the record: a trial's timeline asks them of 100,000 entries many times.
    id: str | None = field(init=False, default=None)
    kind: str | None = field(init=False, default=None)
    supersedes: str | None = field(init=False, default=None)
    proven_time: str | None = field(init=False, default=None)

    def __post_init__(self):
        record = self.verified.record or {}
        self.id, self.kind = record.get("id"), record.get("kind")
        self.supersedes, self.proven_time = record.get("supersedes"), self.verified.proven_time

    @property
    def signs(self) -> str | None:
        """The id a sign-off's ``signOff`` names (``None`` unless a string)."""
        return self.sign_off_field("signs")

    def sign_off_field(self, key: str) -> str | None:
        sign_off = self.field("signOff")
        value = sign_off.get(key) if isinstance(sign_off, dict) else None
        return value if isinstance(value, str) else None

    def field(self, key: str):
        return (self.verified.record or {}).get(key)

    @property
    def final(self) -> bool:
        return self.superseded_by is None

    def label(self) -> str:
        version = f" v{self.version}" if self.versions > 1 else ""
        return f"{self.kind or 'receipt'} {self.field('dataset') or self.verified.source!s}" \
               f"{version}"

    def to_json(self) -> dict:
        record = self.verified.record or {}
        return {
            "receipt": self.verified.source, "id": self.id, "kind": self.kind,
            "trial": record.get("trial"), "site": record.get("site"),
            "dataset": record.get("dataset"), "filename": record.get("filename"),
            "sha256": record.get("sha256"), "supersedes": record.get("supersedes"),
            "submittedAt": record.get("submittedAt"), "provenTime": self.proven_time,
            "state": self.verified.state, "why": self.verified.why,
            "versionChain": {"first": self.chain, "version": self.version,
                             "versions": self.versions, "supersededBy": self.superseded_by,
                             "final": self.final,
                             "predecessorMissing": self.predecessor_missing},
            **({"madeAfter": self.verified.made_after} if "notBefore" in record else {}),
            **({"signs": self.signs} if self.kind == SIGN_OFF else {}),
            **({"signOffs": self.sign_offs} if self.sign_offs else {}),
        }


@dataclass
class Check:
    """A rule judged: ``ok`` ``None`` when n/a; ``earlier`` and ``later`` the entries whose
    proven times decide it (the latest of those that must come first, the first of those
    that must come after); ``margin_seconds`` how far apart (negative: the wrong order)."""

    rule: Rule
    ok: bool | None
    detail: str
    earlier: Entry | None = None
    later: Entry | None = None
    site: str | None = None
    margin_seconds: int | None = None

    def to_json(self) -> dict:
        answer = {"rule": self.rule.name, "ok": self.ok, "statement": self.rule.statement,
                  "detail": self.detail,
                  "earlier": _side_json(self.earlier), "later": _side_json(self.later),
                  "marginSeconds": self.margin_seconds,
                  "margin": None if self.margin_seconds is None
                  else duration(self.margin_seconds)}
        if self.site is not None:
            answer["site"] = self.site
        return answer


def _side_json(entry: Entry | None) -> dict | None:
    if entry is None:
        return None
    return {"id": entry.id, "kind": entry.kind, "dataset": entry.field("dataset"),
            "site": entry.field("site"), "version": entry.version,
            "provenTime": entry.proven_time, "receipt": entry.verified.source}


@dataclass
class Timeline:
    entries: list[Entry]
    checks: list[Check] = field(default_factory=list)

    @property
    def rules_hold(self) -> bool:
        return all(check.ok is not False for check in self.checks)


def build(receipts: Iterable[Verified]) -> Timeline:
    """The entries in proven order (unproven last, then by claimed submission time) with
    their version chains, and every rule judged over them."""
    given = [Entry(verified) for verified in receipts]
    entries = sorted(given, key=_proven_order)  # the order needs nothing linking sets
    shared = shared_ids(entries)
    _link_versions(given, set(shared))  # in the order given, as the browser's timeline.js
    by_id = {entry.id: entry for entry in entries if entry.id is not None}
    for entry in entries:
        if entry.kind == SIGN_OFF and entry.signs in by_id:
            by_id[entry.signs].sign_offs.append(entry.id)
    return Timeline(entries, judge(entries, shared) + _judge_sign_offs(entries, by_id))


def _judge_sign_offs(entries: list[Entry], by_id: dict[str, Entry]) -> list[Check]:
    """One check per sign-off: the registration it signs is given, with its leaf."""
    checks = []
    for entry in (entry for entry in entries if entry.kind == SIGN_OFF):
        signed, leaf = by_id.get(entry.signs), entry.sign_off_field("signsLeaf")
        if signed is None:
            checks.append(Check(SIGNS, None, f"{entry.label()} signs {entry.signs or NOTHING}, "
                                             "which is not among the receipts given", later=entry))
            continue
        held = leaf is not None and _leaf_hex(signed.verified.record) == leaf
        checks.append(Check(SIGNS, held, f"{entry.label()} signs {signed.label()}"
                            + ("" if held else f", but names leaf {leaf or NOTHING}, not its leaf"),
                            signed, entry))
    return checks or [Check(SIGNS, None, "n/a: no sign-off among the receipts given")]


def _leaf_hex(record: dict | None) -> str | None:
    try:
        return record_leaf(record).hex() if record is not None else None
    except (TypeError, ValueError):
        return None


def _proven_order(entry: Entry) -> tuple:
    return (entry.proven_time is None, entry.proven_time or "",
            entry.field("submittedAt") or "", entry.id or "", entry.verified.source)


def shared_ids(entries: list[Entry]) -> list[str]:
    """The ids more than one receipt given holds, in the order they first appear: which of
    them is the registration is not for the timeline to guess."""
    seen: set[str] = set()
    shared: list[str] = []
    for entry in entries:
        if entry.id in seen and entry.id not in shared:
            shared.append(entry.id)
        elif entry.id is not None:
            seen.add(entry.id)
    return shared


def _link_versions(entries: list[Entry], shared: set[str]) -> None:
    """The version chains, over the ids one receipt alone holds (an entry with a ``shared``
    id is in no chain)."""
    linked = [entry for entry in entries if entry.id not in shared]
    by_id = {entry.id: entry for entry in linked if entry.id is not None}
    for entry in linked:
        earlier = by_id.get(entry.supersedes)
        if earlier is not None and earlier.superseded_by is None:
            earlier.superseded_by = entry.id
        elif entry.supersedes not in (None, *shared) and earlier is None:
            entry.predecessor_missing = True
    for entry in linked:
        if entry.id is None or by_id.get(entry.supersedes) is not None:
            continue
        chain, seen = [entry], {entry.id}
        while (following := by_id.get(chain[-1].superseded_by)) and following.id not in seen:
            chain.append(following)
            seen.add(following.id)
        for number, version in enumerate(chain, 1):
            version.chain, version.version, version.versions = entry.id, number, len(chain)


def judge(entries: list[Entry], shared: list[str] | None = None) -> list[Check]:
    """Every rule of :data:`RULES` over the entries, in that order (a rule ``per_site``
    once per site that has entries of its later kind); ``shared``: their
    :func:`shared_ids`, when known. The entries are grouped by kind once: a trial's
    timeline may hold 100,000."""
    by_kind: dict[str | None, list[Entry]] = {}
    for entry in entries:
        by_kind.setdefault(entry.kind, []).append(entry)
    shared = {id_: [entry for entry in entries if entry.id == id_]
              for id_ in (shared_ids(entries) if shared is None else shared)}
    return [check for rule in RULES for check in _judge_rule(rule, by_kind, shared)]


def _judge_rule(rule: Rule, by_kind: dict[str | None, list[Entry]],
                shared: dict[str, list[Entry]]) -> list[Check]:
    """A rule whose kinds are both given, with entries of a shared id, cannot be judged (nor
    which version is final): it fails and says which receipts."""
    kinds = (rule.earlier, rule.later)
    clashing = [(id_, [entry.verified.source for entry in sharing])
                for id_, sharing in shared.items()
                if any(entry.kind in kinds for entry in sharing)]
    if clashing and all(by_kind.get(kind) for kind in kinds):
        return [Check(rule, False, "cannot be judged: " + "; ".join(
            f"the receipts {', '.join(sources)} share the id {id_}"
            for id_, sources in clashing))]
    earlier = [entry for entry in by_kind.get(rule.earlier, ())
               if entry.final or not rule.final_only]
    later = by_kind.get(rule.later, [])
    if not rule.per_site:
        return [_before(rule, earlier, later)]
    by_site: dict[str, list[Entry]] = {}
    for entry in later:
        by_site.setdefault(entry.field("site") or "", []).append(entry)
    checks = []
    for site in sorted(by_site):
        check = _before(rule, earlier, by_site[site])
        check.site = site
        checks.append(check)
    return checks or [_before(rule, earlier, later)]


def _before(rule: Rule, earlier: list[Entry], later: list[Entry]) -> Check:
    """Whether every entry of ``earlier`` was proven strictly before every one of
    ``later``: the latest of the first against the first of the second."""
    missing = [kind for kind, found in ((rule.earlier, earlier), (rule.later, later))
               if not found]
    if missing:
        return Check(rule, None, "n/a: " + " and ".join(f"no {kind}" for kind in missing)
                     + " among the receipts given")
    unproven = [entry for entry in [*earlier, *later] if entry.proven_time is None]
    if unproven:
        return Check(rule, False, "cannot be judged: " + "; ".join(
            f"the receipt of {entry.label()} ({entry.verified.source}) did not verify"
            f"{': ' + entry.verified.why if entry.verified.why else ''}"
            for entry in unproven))
    last = max(earlier, key=lambda entry: entry.proven_time)
    first = min(later, key=lambda entry: entry.proven_time)
    margin = int((_moment(first.proven_time) - _moment(last.proven_time)).total_seconds())
    held = margin > 0
    words = (f"{last.label()} proven at {last.proven_time}, {duration(margin)} before "
             f"{first.label()} proven at {first.proven_time}" if held else
             f"{last.label()} proven at {last.proven_time} is NOT before {first.label()} "
             f"proven at {first.proven_time}"
             + (" (the same second)" if margin == 0 else f" ({duration(-margin)} after)"))
    return Check(rule, held, words, last, first, margin_seconds=margin)


def _moment(proven_time: str) -> datetime:
    return datetime.fromisoformat(proven_time.replace("Z", "+00:00")).replace(microsecond=0)


def duration(seconds: int) -> str:
    """``3d 04h 05m 06s``, from the largest unit present."""
    seconds = abs(seconds)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, rest = divmod(rest, 60)
    parts = [(days, "d"), (hours, "h"), (minutes, "m"), (rest, "s")]
    while len(parts) > 1 and parts[0][0] == 0:
        parts.pop(0)
    return " ".join(f"{value:02d}{unit}" if index else f"{value}{unit}"
                    for index, (value, unit) in enumerate(parts))
