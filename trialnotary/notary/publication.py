"""A trial's public, citable timeline (``/t/<trial>``, docs/api.md "Timeline"): what a
sponsor chose to publish, and the timeline narrowed to it.

Only the chosen kinds are published; site codes only when chosen (else each site is
"site 1", "site 2", … by its first proven entry, so the per-site rule still reads); the
rules are judged again over the published entries alone, since a reader can check only
those. Sign-offs are a kind the sponsor chooses too, and a sign-off is published only with
the registration it signs (its record names that registration's id and label). Publishing
and unpublishing are audit entries.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from trialnotary.notary.chain import ChainClient
from trialnotary.notary.models import Publication
from trialnotary.notary.timeline import KEPT, TrialTimeline, checked_timeline, entries_in
from trialnotary.people import audit, sites
from trialnotary.proof.timeline import SIGN_OFF, SIGNS, Entry, Timeline, Verified, build
from trialnotary.validation import KINDS


@dataclass(frozen=True)
class Choice:
    """What is published: kinds (in ``KINDS`` order), site codes shown or not, receipts
    offered or not."""

    kinds: tuple[str, ...]
    show_sites: bool = False
    offer_receipts: bool = False

    def to_json(self) -> dict:
        return {"kinds": list(self.kinds), "showSites": self.show_sites,
                "offerReceipts": self.offer_receipts}


def choice_of(row: Publication | None) -> Choice | None:
    if row is None:
        return None
    return Choice(tuple(kind for kind in row.kinds.split(",") if kind), row.show_sites,
                  row.offer_receipts)


def find(session: Session, trial: str) -> Publication | None:
    return session.exec(select(Publication).where(Publication.trial == trial)).first()


def publish(session: Session, trial: str, choice: Choice, *, actor: str,
            user_id: int | None) -> Publication:
    """Publish (or change what is published of) a trial's timeline, in the caller's
    transaction (a write session: the audit entry needs its lock)."""
    kinds = tuple(kind for kind in KINDS if kind in choice.kinds)
    if not kinds:
        raise ValueError("choose at least one kind to publish")
    row, old = _row_of(session, trial)
    row.kinds, row.show_sites, row.offer_receipts = (",".join(kinds), choice.show_sites,
                                                     choice.offer_receipts)
    row.published_by = user_id
    session.add(row)
    audit.record(session, actor=actor, action="timeline.publish", entity="trial",
                 entity_id=trial, old=old, new=choice_of(row).to_json())
    return row


def _row_of(session: Session, trial: str) -> tuple[Publication, dict | None]:
    """The trial's publication row and what it published (``None``: a new row).

    Two first publications at once (on PostgreSQL both find no row): the unique ``trial``
    refuses the second's insert, tried in a savepoint so that the caller's transaction goes
    on; the second then updates the row the first committed."""
    row = find(session, trial)
    if row is None:
        try:
            with session.begin_nested():
                row = Publication(trial=trial, kinds="")
                session.add(row)
            return row, None
        except IntegrityError:
            row = find(session, trial)
            if row is None:  # published and taken off again meanwhile: the caller sees why
                raise
    return row, choice_of(row).to_json()


def unpublish(session: Session, trial: str, *, actor: str) -> bool:
    """Take a trial's timeline off ``/t/<trial>``; ``False`` when it was not published."""
    row = find(session, trial)
    if row is None:
        return False
    audit.record(session, actor=actor, action="timeline.unpublish", entity="trial",
                 entity_id=trial, old=choice_of(row).to_json())
    session.delete(row)
    return True


def public_timeline(session: Session, trial: str, chain: ChainClient | None = None
                    ) -> tuple[TrialTimeline, Choice] | None:
    """The published timeline of a trial (``None`` when it is not published): its entries
    of the chosen kinds only, proven ones only (a sign-off only with what it signs; none
    whose ``notBefore`` the verifier fails, checked on ``chain``), sites hidden unless
    chosen, every rule judged over them alone."""
    found = sites.find_trial(session, trial)  # never anything the database chokes on (NUL)
    choice = None if found is None else choice_of(find(session, found.registry_id))
    if choice is None:
        return None
    trial = found.registry_id
    full = checked_timeline(session, trial, chain)
    return KEPT.get(session, ("public", trial, choice, full.failures),
                    lambda: _published(full, choice), entries_in), choice


def _published(full: TrialTimeline, choice: Choice) -> TrialTimeline:
    chosen = _chosen(full, choice)
    if choice.show_sites:
        return TrialTimeline(full.trial, build(chosen))
    return TrialTimeline(full.trial, _judged_hiding_sites(chosen))


def _judged_hiding_sites(chosen: list[Verified]) -> Timeline:
    """The timeline of ``chosen`` with sites hidden. A sign-off's check compares the leaf
    it names with the signed record's, whose site is bound into it: those checks are judged
    over the records as they are (the sign-offs and what they sign: few), and shown with
    the entries whose sites are hidden."""
    hidden = build(_pseudonymous(chosen))
    signed = {entry.signs for entry in hidden.entries if entry.kind == SIGN_OFF}
    if not signed:
        return hidden
    as_they_are = build([verified for verified in chosen
                         if verified.record.get("kind") == SIGN_OFF
                         or verified.record.get("id") in signed])
    by_id = {entry.id: entry for entry in hidden.entries}

    def shown(entry: Entry | None) -> Entry | None:
        return None if entry is None else by_id[entry.id]

    hidden.checks = [check for check in hidden.checks if check.rule != SIGNS] + [
        replace(check, earlier=shown(check.earlier), later=shown(check.later))
        for check in as_they_are.checks if check.rule == SIGNS]
    return hidden


def _chosen(full: TrialTimeline, choice: Choice) -> list[Verified]:
    shown = [entry for entry in full.timeline.entries
             if entry.kind in choice.kinds and entry.proven_time is not None]
    signable = {entry.id for entry in shown if entry.kind != SIGN_OFF}
    return [entry.verified for entry in shown
            if entry.kind != SIGN_OFF or entry.signs in signable]


def published_ids(published: TrialTimeline) -> set[str]:
    return {entry.id for entry in published.timeline.entries}


def _pseudonymous(chosen: list[Verified]) -> list[Verified]:
    """The entries with each site code replaced by "site N", numbered by first proven
    entry (a receipt's name holds the trial, label and id, never the site)."""
    names: dict[str, str] = {}
    hidden = []
    for verified in chosen:
        site = verified.record.get("site")
        names.setdefault(site, f"site {len(names) + 1}")
        hidden.append(replace(verified, record={**verified.record, "site": names[site]}))
    return hidden
