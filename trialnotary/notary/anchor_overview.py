"""What the admin sees of each anchor: where it anchors, how often, its account and what
anchoring costs a day at current fees, its status and its retirement date. Read only; asks
each EVM anchor's node (never raises for a dead one)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlmodel import Session

from trialnotary.anchor_config import EVM, AnchorSpec
from trialnotary.notary.anchoring import anchor_statuses
from trialnotary.notary.chain import anchor_gas
from trialnotary.notary.models import ChainStatus

DAY_SECONDS = 86_400
#: Warn on the admin page this many days before an anchor's ``retire_on``.
RETIRE_WARNING_DAYS = 60


@dataclass(frozen=True)
class AnchorRow:
    spec: AnchorSpec
    status: ChainStatus | None
    anchors_per_day: float
    days_left: int | None           # until retire_on (negative: past it)
    funding: dict | None = None     # EVM: ChainClient.funding(), plus costPerDayWei

    @property
    def retired(self) -> bool:
        return self.status is not None and self.status.retired_at is not None

    @property
    def retiring_soon(self) -> bool:
        return not self.retired and self.days_left is not None \
            and self.days_left <= RETIRE_WARNING_DAYS


def anchors_per_day(spec: AnchorSpec, seal_interval_seconds: float) -> float:
    """At most how many anchors a day: one per seal interval for an anchor of each batch
    (when registrations keep coming), one per period for a roll-up."""
    every = spec.every_seconds or seal_interval_seconds
    return DAY_SECONDS / max(every, seal_interval_seconds)


def anchor_rows(session: Session, specs, seal_interval_seconds: float, chains: dict,
                today: date) -> list[AnchorRow]:
    """One row per configured anchor, in order; ``chains``: the EVM anchors' clients, by
    name."""
    statuses = anchor_statuses(session)
    rows = []
    for spec in specs:
        per_day = anchors_per_day(spec, seal_interval_seconds)
        funding = None
        if spec.kind == EVM and spec.name in chains:
            funding = chains[spec.name].funding()
            if funding.get("reachable"):
                funding["costPerDayWei"] = round(per_day * anchor_gas(b"\xff" * 32)
                                                 * funding["feePerGasWei"])
        days_left = None if spec.retire_on is None else (spec.retire_on - today).days
        rows.append(AnchorRow(spec, statuses.get(spec.name), per_day, days_left, funding))
    return rows
