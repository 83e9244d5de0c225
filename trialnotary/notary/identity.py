"""The notary's identity: its name, public URL and every anchoring address per chain with
the time it was in use, published at ``/.well-known/trialnotary.json`` (docs/receipt.md,
"The notary's identity").

The address history lives in ``notary_address``. It is seeded from the configured key (and
any anchors already sent) the first time the notary runs; ``chain rotate-key`` moves
anchoring to a new key, and ``chain revoke-key`` records a compromise. An address's ``from``
is at or before its first anchor's block time (lowered when an anchor confirms in a block
older than it); ``until`` is set once the last anchor signed with it is confirmed. Every
change publishes a new version of the document, stored as served and written to the audit
trail as an entry holding its SHA-256, so the anchored audit head seals its history.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from trialnotary.anchor_config import EVM, RFC3161
from trialnotary.config import CHAINS, ConfigError, Settings
from trialnotary.db import as_utc, utcnow, write_session
from trialnotary.notary.errors import ChainError, IdentityRefused
from trialnotary.notary.models import Anchor, IdentityVersion, NotaryAddress, RollupBatch
from trialnotary.notary.states import LIVE_ANCHOR_STATES, AnchorState
from trialnotary.people import audit
from trialnotary.proof.receipt import canonical_json, rfc3339_ms

log = logging.getLogger(__name__)
ACTOR = "trialnotary"
AUDIT_ACTION = "notary.identity"


@dataclass(frozen=True)
class ConfiguredAnchor:
    """One EVM anchor of this instance, as its identity lists it."""

    name: str
    kind: str
    chain_id: int
    retire_on: str | None = None


def configured_anchors(settings: Settings) -> list[ConfiguredAnchor]:
    """The instance's EVM anchors (``settings.anchors``; without ``[[anchors]]``, the one
    configured chain, named after it: ``local``, ``sepolia``, …)."""
    return [ConfiguredAnchor(name=spec.name, kind=EVM, chain_id=spec.chain_id,
                             retire_on=spec.retire_on.isoformat() if spec.retire_on else None)
            for spec in settings.anchors if spec.kind == EVM]


def anchor_for_chain(settings: Settings, chain_id: int) -> ConfiguredAnchor:
    """The configured anchor on ``chain_id``; for a chain the notary used before, one
    named after that chain."""
    for anchor in configured_anchors(settings):
        if anchor.chain_id == chain_id:
            return anchor
    return ConfiguredAnchor(name=default_anchor_name(chain_id), kind=EVM, chain_id=chain_id)


def default_anchor_name(chain_id: int) -> str:
    return next((name for name, preset in CHAINS.items() if preset.chain_id == chain_id),
                f"chain-{chain_id}")


def notary_of(settings: Settings, served_url: str | None = None) -> dict:
    """The receipt's ``notary``: ``{"name", "url"}``. The URL is ``TRIALNOTARY_PUBLIC_URL``,
    else the address the request came to."""
    url = settings.public_url or (served_url or "").rstrip("/") or None
    return {"name": settings.notary_name, "url": url}


def whole_seconds(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str) -> datetime:
    """An RFC 3339 time given to a command (``Z`` or an offset; a date alone is midnight
    UTC) as an aware datetime."""
    value = text.strip()
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise IdentityRefused(f"{text!r} is not a time like 2026-12-01T10:00:00Z") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


# --- the address history -------------------------------------------------------------

def _rows(session: Session, chain_id: int | None = None) -> list[NotaryAddress]:
    query = select(NotaryAddress).order_by(NotaryAddress.valid_from, NotaryAddress.id)
    if chain_id is not None:
        query = query.where(NotaryAddress.chain_id == chain_id)
    return list(session.exec(query))


def _current(rows: list[NotaryAddress]) -> NotaryAddress | None:
    """The address anchoring now among one chain's ``rows`` (one anchor per chain)."""
    live = [row for row in rows if row.retired_at is None]
    return live[-1] if live else None


@contextmanager
def _writing(engine: Engine) -> Iterator[Session]:
    """A write transaction on the identity. Every one ends in an audit entry, so on
    PostgreSQL it takes the audit trail's lock first: two processes seeding or publishing
    at once take turns instead of colliding (SQLite's write lock does the same)."""
    with write_session(engine) as session:
        if session.get_bind().dialect.name == "postgresql":
            session.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"),
                            {"k": audit.AUDIT_LOCK_KEY})
        yield session


def _seed(session: Session, settings: Settings, address: str) -> bool:
    """On a chain with no history yet: every address that anchored there before (retired,
    unless it is the configured one) and the configured key's address from now on."""
    anchor = anchor_for_chain(settings, settings.chain_id)
    if _rows(session, anchor.chain_id):
        return False
    past = session.execute(
        select(Anchor.sender, sa.func.min(Anchor.block_time), sa.func.max(Anchor.block_time),
               sa.func.min(Anchor.created_at))
        .where(Anchor.chain_id == anchor.chain_id).group_by(Anchor.sender)).all()
    now = whole_seconds(utcnow())
    seen = set()
    for sender, first_block, last_block, first_signed in past:
        since = min(filter(None, [first_block, whole_seconds(as_utc(first_signed))]))
        retired = None if sender.lower() == address.lower() else (last_block or since)
        session.add(NotaryAddress(anchor=anchor.name, chain_id=anchor.chain_id,
                                  address=sender, valid_from=since, retired_at=retired,
                                  until=None))
        seen.add(sender.lower())
    if address.lower() not in seen:
        session.add(NotaryAddress(anchor=anchor.name, chain_id=anchor.chain_id,
                                  address=address, valid_from=now))
    return True


def _move_to(session: Session, rows: list[NotaryAddress], anchor: ConfiguredAnchor,
             address: str, key_file: str | None) -> NotaryAddress:
    """Anchoring moves to ``address`` now: the current address retires (its ``until``
    comes when its last anchor confirms)."""
    if any(row.address.lower() == address.lower() for row in rows):
        raise IdentityRefused(f"{address} was already an anchoring address of this notary "
                              f"on chain {anchor.chain_id}: use a new key")
    now = whole_seconds(utcnow())
    current = _current(rows)
    if current is not None:
        current.retired_at = now
        session.add(current)
    row = NotaryAddress(anchor=anchor.name, chain_id=anchor.chain_id, address=address,
                        valid_from=now, key_file=key_file)
    session.add(row)
    return row


def seed_if_new(engine: Engine, chain) -> None:
    """Seed the history of the chain's anchor, if it has none, before anything is sealed:
    so the first version's audit entry is sealed with the entries before it (and never
    needs a batch of the audit head alone for itself)."""
    with Session(engine) as session:
        if _rows(session, chain.settings.chain_id):
            return
    with _writing(engine) as session:
        _seed_if_possible(session, chain.settings, chain)
        _publish(session, chain.settings)
        session.commit()


def prepare_signer(engine: Engine, chain) -> None:
    """Before an anchoring round: seed the history on first use, and make ``chain`` sign
    with the notary's current key on its chain. A configured key the notary never used is
    a rotation to it; a configured key rotated away from yields to the current one.

    Raises ``ChainError`` when the current key cannot be used (revoked, or its file gone).
    """
    settings = chain.settings
    anchor = anchor_for_chain(settings, settings.chain_id)
    configured = chain.configured_account.address
    with Session(engine) as session:
        rows = _rows(session, anchor.chain_id)
    current = _current(rows)
    if current is None or all(row.address.lower() != configured.lower() for row in rows):
        _take_configured_key(engine, settings, anchor, configured)
        return prepare_signer(engine, chain)
    if current.compromised_from is not None:
        raise ChainError(f"the anchoring address {current.address} is revoked: move "
                         "anchoring to a new key with `trialnotary chain rotate-key`")
    if chain.address.lower() == current.address.lower():
        return
    if current.address.lower() == configured.lower():
        chain.use_key(settings.anchor_key())
        return
    if not current.key_file:
        raise ChainError(f"the notary anchors from {current.address} on chain "
                         f"{anchor.chain_id}, but TRIALNOTARY_ANCHOR_KEY_FILE holds the key "
                         f"of {configured}")
    if chain.use_key(_read_key(Path(current.key_file))).lower() != current.address.lower():
        raise ChainError(f"the key file {current.key_file} no longer holds the key of "
                         f"{current.address}")


def _take_configured_key(engine: Engine, settings: Settings, anchor: ConfiguredAnchor,
                         configured: str) -> None:
    """Seed the chain's history with the configured key, or move anchoring to it when it is
    a key the notary never used there."""
    with _writing(engine) as session:
        rows = _rows(session, anchor.chain_id)
        if any(row.address.lower() == configured.lower() for row in rows) and _current(rows):
            return  # another process was first
        if not _seed(session, settings, configured):
            try:
                _move_to(session, rows, anchor, configured, None)
            except IdentityRefused as exc:
                raise ChainError(f"anchoring stopped: {exc}") from None
            log.warning("the configured anchoring key %s is new on chain %s: anchoring "
                        "moves to it", configured, anchor.chain_id)
        _commit_and_publish(session, settings)


def _read_key(path: Path) -> str:
    try:
        key = path.read_text().strip()
    except OSError as exc:
        raise ChainError(f"the anchoring key file {path} cannot be read: "
                         f"{exc.strerror}") from None
    return key if key.startswith("0x") else "0x" + key


def after_round(engine: Engine, settings: Settings, confirmed_batches: list[int]) -> None:
    """After an anchoring round: lower ``from`` to any newly confirmed anchor's earlier block
    time, and close (``until``) retired addresses whose last anchor is now confirmed. Reads
    first; writes (a new version) only when something changes."""
    with Session(engine) as session:
        rows = _rows(session, settings.chain_id)
        firsts = _first_blocks(session, settings.chain_id, confirmed_batches)
        lowered = {row.id: firsts[row.address] for row in rows
                   if firsts.get(row.address, row.valid_from) < row.valid_from}
        closed = {row.id: _last_use(session, row) for row in rows
                  if row.retired_at is not None and row.until is None
                  and not _in_flight(session, row)}
    if not lowered and not closed:
        return
    with _writing(engine) as session:
        for row in _rows(session, settings.chain_id):
            if row.id in lowered:
                row.valid_from = min(row.valid_from, lowered[row.id])
            if row.id in closed and row.until is None:
                row.until = closed[row.id]
            session.add(row)
        _commit_and_publish(session, settings)


def _first_blocks(session: Session, chain_id: int, batch_ids: list[int]) -> dict[str, str]:
    """The earliest block time of these batches' confirmed anchors, by sender."""
    if not batch_ids:
        return {}
    return dict(session.execute(
        select(Anchor.sender, sa.func.min(Anchor.block_time)).where(
            Anchor.rollup_id.in_(select(RollupBatch.rollup_id)
                                 .where(RollupBatch.batch_id.in_(batch_ids))),
            Anchor.state == AnchorState.CONFIRMED,
            Anchor.chain_id == chain_id, Anchor.block_time.is_not(None))
        .group_by(Anchor.sender)).all())


def _in_flight(session: Session, row: NotaryAddress) -> bool:
    return session.execute(select(Anchor.id).where(
        Anchor.chain_id == row.chain_id, Anchor.sender == row.address,
        Anchor.state.in_(LIVE_ANCHOR_STATES)).limit(1)).first() is not None


def _last_use(session: Session, row: NotaryAddress) -> str:
    """The later of the retirement and the last confirmed anchor's block time."""
    last = session.scalar(select(sa.func.max(Anchor.block_time)).where(
        Anchor.chain_id == row.chain_id, Anchor.sender == row.address,
        Anchor.state == AnchorState.CONFIRMED))
    return max(filter(None, [row.retired_at, last]))


def rotate(engine: Engine, settings: Settings, anchor_name: str, key_file: Path) -> tuple[
        str | None, str]:
    """``chain rotate-key``: anchors of ``anchor_name`` are signed with the key in
    ``key_file`` from now on. Returns the old and the new address."""
    from eth_account import Account

    anchor = _configured(settings, anchor_name)
    path = key_file.resolve()
    try:
        address = Account.from_key(_read_key(path)).address
    except ChainError as exc:
        raise IdentityRefused(str(exc)) from None
    except ValueError:
        raise IdentityRefused(f"{key_file} does not hold a private key") from None
    spec = next(spec for spec in settings.anchors if spec.name == anchor_name)
    chain_settings = settings.for_anchor(spec)  # the anchor's chain and configured key
    with _writing(engine) as session:
        rows = _rows(session, anchor.chain_id)
        if not rows:
            _seed(session, chain_settings, _configured_address(chain_settings))
            session.flush()
            rows = _rows(session, anchor.chain_id)
        old = _current(rows)
        _move_to(session, rows, anchor, address, str(path))
        _commit_and_publish(session, settings)
    return (old.address if old else None), address


def _configured(settings: Settings, name: str) -> ConfiguredAnchor:
    names = [anchor.name for anchor in configured_anchors(settings)]
    for anchor in configured_anchors(settings):
        if anchor.name == name:
            return anchor
    raise IdentityRefused(f"no anchor is named {name!r}: this notary's anchors are "
                          f"{', '.join(names)}")


def _configured_address(settings: Settings) -> str:
    from eth_account import Account

    return Account.from_key(settings.anchor_key()).address


def revoke(engine: Engine, settings: Settings, address: str, since: datetime) -> NotaryAddress:
    """``chain revoke-key``: anchors of ``address`` in blocks at or after ``since`` must not
    be trusted. An earlier ``compromisedFrom`` stays."""
    moment = whole_seconds(since)
    with _writing(engine) as session:
        rows = [row for row in _rows(session) if row.address.lower() == address.lower()]
        if not rows:
            raise IdentityRefused(f"{address} is not an anchoring address of this notary")
        for row in rows:
            if row.compromised_from is None or moment < row.compromised_from:
                row.compromised_from = moment
                session.add(row)
        _commit_and_publish(session, settings)
    return rows[0]


# --- the document ----------------------------------------------------------------------

def _content(session: Session, settings: Settings, served_url: str | None) -> dict:
    """The document without ``version`` and ``updatedAt``."""
    latest = _latest(session)
    previous_url = json.loads(latest.document)["url"] if latest else None
    url = settings.public_url or previous_url or (served_url or "").rstrip("/") or None
    groups: dict[tuple[str, int], list[NotaryAddress]] = {}
    for row in _rows(session):
        groups.setdefault((row.anchor, row.chain_id), []).append(row)
    retire_on = {anchor.name: anchor.retire_on for anchor in configured_anchors(settings)}
    anchors = [{
        "name": name, "kind": EVM, "chainId": chain_id, "retireOn": retire_on.get(name),
        "addresses": [{"address": row.address, "from": row.valid_from, "until": row.until,
                       "compromisedFrom": row.compromised_from} for row in rows],
    } for (name, chain_id), rows in groups.items()]
    return {"name": settings.notary_name, "url": url,
            "anchors": anchors + _authorities(settings)}


def _authorities(settings: Settings) -> list[dict]:
    """The RFC 3161 anchors, with the CA certificates their tokens are checked against
    (what a reviewer pins a time-stamp with)."""
    return [{"name": spec.name, "kind": RFC3161, "url": spec.url,
             "retireOn": spec.retire_on.isoformat() if spec.retire_on else None,
             "certificates": _pem_certificates(spec.ca_file)}
            for spec in settings.anchors if spec.kind == RFC3161]


def _pem_certificates(path: Path) -> list[str]:
    """Each PEM certificate of a file, as text (none when it cannot be read)."""
    try:
        text = path.read_text("ascii")
    except (OSError, UnicodeDecodeError):
        log.error("the CA file %s cannot be read: the identity lists no certificate", path)
        return []
    begin, end = "-----BEGIN CERTIFICATE-----", "-----END CERTIFICATE-----"
    return [part[part.index(begin):].strip() + "\n" + end + "\n"
            for part in text.split(end) if begin in part]


def _latest(session: Session) -> IdentityVersion | None:
    return session.exec(select(IdentityVersion).order_by(IdentityVersion.version.desc())
                        .limit(1)).first()


def _without_version(document: dict) -> dict:
    return {key: value for key, value in document.items()
            if key not in ("version", "updatedAt")}


def _publish(session: Session, settings: Settings, served_url: str | None = None
             ) -> IdentityVersion:
    """The newest version, a new one first when the content changed (in the caller's
    write transaction), with its audit entry."""
    content = _content(session, settings, served_url)
    latest = _latest(session)
    if latest is not None and _without_version(json.loads(latest.document)) == content:
        return latest
    version = 1 if latest is None else latest.version + 1
    document = {"name": content["name"], "url": content["url"], "version": version,
                "updatedAt": rfc3339_ms(utcnow()), "anchors": content["anchors"]}
    text = canonical_json(document).decode("utf-8")
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    row = IdentityVersion(version=version, document=text, sha256=digest)
    session.add(row)
    audit.record(session, actor=ACTOR, action=AUDIT_ACTION, entity="notary_identity",
                 entity_id=version, new={"version": version, "sha256": digest})
    log.info("identity version %s published (sha256 %s)", version, digest)
    return row


def _commit_and_publish(session: Session, settings: Settings) -> None:
    session.flush()
    _publish(session, settings)
    session.commit()


def document_text(engine: Engine, settings: Settings, chain=None,
                  served_url: str | None = None) -> str:
    """The identity document as served: the newest version, seeded and published first
    when the history is empty or the configuration changed it."""
    with Session(engine) as session:
        latest = _latest(session)
        if latest is not None and _without_version(json.loads(latest.document)) == \
                _content(session, settings, served_url):
            return latest.document
    try:
        with _writing(engine) as session:
            if chain is not None:
                _seed_if_possible(session, settings, chain)
            row = _publish(session, settings, served_url)
            session.commit()
            return row.document
    except IntegrityError:  # another process published the same version first
        with Session(engine) as session:
            return _latest(session).document


def _seed_if_possible(session: Session, settings: Settings, chain) -> None:
    """Seed from the configured key, when this process can read it."""
    try:
        address = chain.configured_account.address
    except (ConfigError, ValueError):
        return
    if _seed(session, settings, address):
        session.flush()


def anchor_names(connection: sa.Connection | Session) -> dict[tuple[int, str], str]:
    """Each anchoring address's anchor name, by ``(chain id, address)``."""
    rows = connection.execute(select(NotaryAddress.chain_id, NotaryAddress.address,
                                     NotaryAddress.anchor)).all()
    return {(chain_id, address): name for chain_id, address, name in rows}
