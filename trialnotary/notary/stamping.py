"""An RFC 3161 anchor's round: roll the batches up as the anchor says, and time-stamp each
roll-up's root at the anchor's time-stamp authority (``notary.tsa``).

A token is kept only once it verified against the anchor's CA, and the roll-up is then
confirmed at once: a time-stamp has no confirmations to wait for. An authority that does
not answer puts the round off (the anchor's status says so); the others go on.
"""

from __future__ import annotations

import logging
import time

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from trialnotary.anchor_config import AnchorSpec
from trialnotary.config import ConfigError
from trialnotary.db import chain_lock, write_session
from trialnotary.notary.models import Rollup, Stamp
from trialnotary.notary.renewal import is_retired
from trialnotary.notary.rollups import (
    register_anchors,
    roll_up,
    rollup_label,
    set_rollup_state,
)
from trialnotary.notary.states import BatchState

log = logging.getLogger(__name__)


def tsa_client(spec: AnchorSpec, timeout: float = 10.0):
    """The client of an RFC 3161 anchor's authority, trusting its ``ca_file``."""
    from trialnotary.notary.tsa import TsaClient
    from trialnotary.proof.tsa import load_certificates

    try:
        pem = spec.ca_file.read_bytes()
    except OSError as exc:
        raise ConfigError(f"anchor {spec.name!r}: ca_file {spec.ca_file} cannot be read: "
                          f"{exc.strerror}") from None
    try:
        certificates = load_certificates(pem)
    except ValueError as exc:
        raise ConfigError(f"anchor {spec.name!r}: ca_file {spec.ca_file}: {exc}") from None
    return TsaClient(spec.url, certificates, timeout=timeout)


def stamp_round(engine: Engine, spec: AnchorSpec, client, done, *, wait: float = 0):
    """Roll up and time-stamp what is due for ``spec``; ``done`` (an ``anchoring.Round``)
    gathers the batches confirmed. ``None`` when another process holds the anchor's lock.
    Raises the client's errors (unreachable, refused, misconfigured); what was stamped
    before stays stamped."""
    deadline = time.monotonic() + wait
    while True:
        with chain_lock(engine, spec.name) as held:
            if held and is_retired(engine, spec.name):
                return done
            if held:
                register_anchors(engine, (spec,))
                roll_up(engine, spec)
                for rollup in _unstamped(engine, spec.name):
                    done.confirmed.extend(_stamp(engine, client, rollup))
                return done
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.2)


def _unstamped(engine: Engine, name: str) -> list[Rollup]:
    with Session(engine) as session:
        return list(session.exec(select(Rollup).where(Rollup.anchor == name,
                                                      Rollup.state == BatchState.SEALED)
                                 .order_by(Rollup.id)))


def _stamp(engine: Engine, client, rollup: Rollup) -> list[int]:
    stamp = client.stamp(bytes(rollup.root))
    with write_session(engine) as session:
        session.add(Stamp(name=rollup.anchor, rollup_id=rollup.id, token=stamp.token,
                          gen_time=stamp.gen_time, tsa=stamp.tsa[:300]))
        batch_ids = set_rollup_state(session, rollup.id, BatchState.CONFIRMED)
        session.commit()
    log.info("%s: %s time-stamped at %s by %s", rollup.anchor,
             rollup_label(rollup.id, batch_ids), stamp.gen_time, stamp.tsa)
    return batch_ids
