"""Configuration shared by the server, the scheduler and every CLI command.

Sources, later ones winning: built-in defaults, ``<instance>/config.toml`` (keys are the
environment variable names), a ``.env`` file in the project folder, the environment.

The project folder is the working folder, or the nearest folder above it that holds an
``instance/`` folder or a ``.env`` file setting TRIALNOTARY_* variables (as git finds
``.git``, but never above the root of a git checkout); the instance is
``TRIALNOTARY_INSTANCE_PATH`` when set, else ``<project folder>/instance``. So every command
finds the server's instance from any folder inside the project.

Every variable, its default and the local default are described in docs/configuration.md.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import secrets
import stat
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from dotenv import dotenv_values

from trialnotary.anchor_config import EVM, AnchorConfigError, AnchorSpec, parse_anchor_tables
from trialnotary.errors import TrialnotaryError

PREFIX = "TRIALNOTARY_"
log = logging.getLogger(__name__)
# The instance folder holds every trial's records, password hashes and the secret key:
# its owner alone may read it, or hold the database's write lock.
PRIVATE_FOLDER, PRIVATE_FILE = 0o700, 0o600

# Anvil's first development account. Its key is published in anvil's own output and docs:
# it is NOT a secret and is used only for the local chain (TRIALNOTARY_CHAIN=local).
ANVIL_DEV_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"


@dataclass(frozen=True)
class ChainPreset:
    chain_id: int
    rpc_urls: tuple[str, ...]
    confirmations: int | str
    max_fee_gwei: float
    resend_after_seconds: float   # a sent anchor the node no longer knows is sent again
    replace_after_seconds: float  # a known anchor still unmined is replaced, fees raised


CHAINS = {
    "local": ChainPreset(31337, ("http://127.0.0.1:8545",), 2, 100.0, 10, 30),
    "sepolia": ChainPreset(11155111, (), "finalized", 50.0, 60, 180),
    "hoodi": ChainPreset(560048, (), "finalized", 50.0, 60, 180),
    "mainnet": ChainPreset(1, (), "finalized", 30.0, 60, 300),
}
# How an anchor on a chain of no known name is run (its chain id comes from the table).
OTHER_CHAIN = ChainPreset(0, (), 2, 50.0, 60, 180)


class ConfigError(TrialnotaryError, ValueError):
    """A configuration value that cannot be used; the message names the variable."""


# The names a local notary answers to, on any port, unless TRIALNOTARY_ALLOWED_HOSTS says
# otherwise. IPv6 addresses are written as in a Host header: in brackets.
LOCAL_HOSTS = ("127.0.0.1", "localhost", "[::1]")
ANY_HOST = "*"
_HOST_NAME = r"\[[0-9a-f:.]+\]|[a-z0-9-]+(?:\.[a-z0-9-]+)*"
_HOST = re.compile(rf"(?P<name>{_HOST_NAME})(?::(?P<port>[0-9]{{1,5}}))?")


def host_name(host: str) -> str | None:
    """The name in a ``Host`` header (``name`` or ``name:port``), lower-cased, or ``None``
    if it is none."""
    match = _HOST.fullmatch(host.strip().lower())
    if match is None or (match["port"] and not 0 < int(match["port"]) < 65536):
        return None
    return match["name"]


@dataclass
class Settings:
    instance_path: Path
    database_url: str
    chain: str
    rpc_urls: list[str]
    chain_id: int
    anchor_key_file: Path | None
    seal_interval_seconds: float
    max_batch: int
    confirmations: int | str
    max_fee_gwei: float
    secret_key: str = field(repr=False)
    session_idle_minutes: float = 15.0
    secure_cookies: bool = False
    ratelimit_storage_url: str = "memory://"
    login_rate_limit: str = "10 per minute"
    lookup_rate_limit: str = "30 per minute"
    trusted_proxies: int = 0
    public_url: str | None = None
    notary_name: str = "trialnotary"  # how the notary names itself in receipts and identity
    resend_after_seconds: float = 10.0
    replace_after_seconds: float = 30.0
    write_lock_timeout_seconds: float = 5.0
    allowed_hosts: tuple[str, ...] = LOCAL_HOSTS
    site_token_days: float | None = 90.0  # a new site token's life unless asked; None: no end
    instance_origin: str = "given"  # how the instance folder was found, for messages
    anchors: tuple[AnchorSpec, ...] = ()  # every anchor, in the configured order
    anchor_tables: bool = False  # the anchors come from [[anchors]], not TRIALNOTARY_CHAIN*

    def for_anchor(self, spec: AnchorSpec) -> Settings:
        """These settings with an EVM anchor's chain, nodes, key and confirmations as the
        chain ones (what a ``ChainClient`` of that anchor reads). Without ``[[anchors]]``
        the one anchor is the chain settings themselves."""
        if not self.anchor_tables:
            return self
        preset = CHAINS.get(spec.chain or "") or OTHER_CHAIN
        return dataclasses.replace(
            self, chain=spec.chain or f"chain-{spec.chain_id}", chain_id=spec.chain_id,
            rpc_urls=list(spec.rpc_urls), anchor_key_file=spec.key_file,
            confirmations=spec.confirmations or preset.confirmations,
            max_fee_gwei=preset.max_fee_gwei if spec.max_fee_gwei is None
            else spec.max_fee_gwei,
            resend_after_seconds=preset.resend_after_seconds,
            replace_after_seconds=preset.replace_after_seconds)

    def location(self) -> str:
        """Which instance and database this process uses (the database URL without its
        password), so that a command says what it looked at."""
        return (f"instance {self.instance_path} ({self.instance_origin}); "
                f"database {without_password(self.database_url)}")

    def anchor_key(self) -> str:
        """The anchoring private key; never logged, printed or stored in the database."""
        if self.anchor_key_file is None:
            if self.chain != "local":
                raise ConfigError(f"{PREFIX}ANCHOR_KEY_FILE is required on chain {self.chain!r}")
            return ANVIL_DEV_KEY
        try:
            key = self.anchor_key_file.read_text().strip()
        except OSError as exc:
            raise ConfigError(f"{PREFIX}ANCHOR_KEY_FILE cannot be read: {exc.strerror}") from None
        return key if key.startswith("0x") else "0x" + key


def without_password(url: str) -> str:
    """``url`` with the password of its user part, if any, replaced by ``***``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    userinfo, _, host = parts.netloc.rpartition("@")
    user = userinfo.split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def project_folder(start: Path) -> Path:
    """``start`` or the nearest folder above it holding ``instance/`` or a ``.env`` that
    sets TRIALNOTARY_* variables (another tool's ``.env`` is no sign), never above a git
    checkout's root; ``start`` itself when there is none."""
    for folder in (start, *start.parents):
        if (folder / "instance").is_dir() or _sets_our_variables(folder / ".env"):
            return folder
        if (folder / ".git").exists():
            break
    return start


def _sets_our_variables(dotenv_file: Path) -> bool:
    return dotenv_file.is_file() and any(name.startswith(PREFIX)
                                         for name in dotenv_values(dotenv_file))


def _instance(env: dict[str, str], dotenv: dict[str, str], cwd: Path,
              project: Path) -> tuple[Path, str]:
    """The instance folder and how it was found."""
    name = PREFIX + "INSTANCE_PATH"
    if env.get(name):
        return cwd / env[name], f"from {name}"
    if dotenv.get(name):
        return project / dotenv[name], f"from {name} in {project / '.env'}"
    if (project / "instance").is_dir():
        return project / "instance", ("in the working folder" if project == cwd
                                      else f"found above the working folder {cwd}")
    return project / "instance", f"the default: no instance/ found from {cwd} up"


_ORIGIN = "instance origin"  # not a variable name: how _raw_values found the instance
_ANCHORS = "anchors"  # config.toml's [[anchors]] tables, kept as read


def _raw_values(environ: dict[str, str] | None) -> dict:
    env = dict(os.environ if environ is None else environ)
    cwd = Path.cwd()
    project = project_folder(cwd)
    dotenv = {} if environ is not None else {
        k: v for k, v in dotenv_values(project / ".env").items() if v is not None}
    instance, origin = _instance(env, dotenv, cwd, project)
    values: dict[str, str] = {}
    config_file = instance / "config.toml"
    if config_file.exists():
        with config_file.open("rb") as fh:
            table = tomllib.load(fh)
        anchors = table.pop(_ANCHORS, None)
        values.update({k: str(v) for k, v in table.items()})
        if anchors is not None:
            values[_ANCHORS] = anchors
    values.update(dotenv)
    values.update({k: v for k, v in env.items() if k.startswith(PREFIX)})
    values[PREFIX + "INSTANCE_PATH"] = str(instance)
    values[_ORIGIN] = origin
    return values


def _confirmations(raw: str) -> int | str:
    if raw == "finalized":
        return raw
    try:
        count = int(raw)
    except ValueError:
        count = 0
    if count < 1:
        raise ConfigError(f"{PREFIX}CONFIRMATIONS must be a number ≥ 1 or 'finalized', not {raw!r}")
    return count


def _number(values: dict, name: str, default, kind=float, minimum=0):
    raw = values.get(PREFIX + name)
    if raw in (None, ""):
        return default
    try:
        number = kind(raw)
    except ValueError:
        raise ConfigError(f"{PREFIX}{name} must be a number, not {raw!r}") from None
    if number < minimum:
        raise ConfigError(f"{PREFIX}{name} must be at least {minimum}")
    return number


def _rate_limit(values: dict, name: str, default: str) -> str:
    """A limit such as ``10 per minute`` or ``100/hour``, checked now rather than at the
    first request it would fail."""
    from limits import parse

    raw = (values.get(PREFIX + name) or "").strip() or default
    try:
        parse(raw)
    except ValueError:
        raise ConfigError(f"{PREFIX}{name} must be a rate like '10 per minute', "
                          f"not {raw!r}") from None
    return raw


def _flag(values: dict, name: str, *, default: bool) -> bool:
    raw = (values.get(PREFIX + name) or "").strip().lower()
    if raw == "":
        return default
    if raw not in ("1", "true", "yes", "0", "false", "no"):
        raise ConfigError(f"{PREFIX}{name} must be true or false, not {raw!r}")
    return raw in ("1", "true", "yes")


def private_opener(path, flags: int) -> int:
    """For ``open(..., opener=private_opener)``: a file it creates is its owner's alone."""
    return os.open(path, flags, PRIVATE_FILE)


def private_folder(folder: Path) -> None:
    """Create ``folder`` (if new) so that only its owner may enter it."""
    folder.mkdir(mode=PRIVATE_FOLDER, parents=True, exist_ok=True)


def make_private(paths) -> list[Path]:
    """Take group and other permissions away from those of ``paths`` that have any
    (symbolic links and missing paths are left alone); warn naming them, and return them."""
    loosened = []
    for path in paths:
        try:
            mode = path.lstat().st_mode
        except FileNotFoundError:
            continue
        if stat.S_ISLNK(mode) or not mode & 0o077:
            continue
        try:
            path.chmod(stat.S_IMODE(mode) & PRIVATE_FOLDER)
        except PermissionError:
            log.warning("other users can read %s, and it is not ours to change", path)
            continue
        loosened.append(path)
    if loosened:
        log.warning("other users could read %s: now readable by their owner only",
                    ", ".join(str(path) for path in loosened))
    return loosened


def make_instance_private(instance: Path) -> list[Path]:
    """The instance folder and the files directly in it, owner only (see ``make_private``)."""
    if not instance.is_dir():
        return []
    return make_private([instance, *sorted(instance.iterdir())])


def _secret_key(instance: Path, configured: str | None, create: bool) -> str:
    if configured:
        return configured
    path = instance / "secret_key"
    if path.exists():
        return path.read_text().strip()
    if not create:
        return secrets.token_hex(32)  # signs nothing that outlives this process
    private_folder(instance)
    key = secrets.token_hex(32)
    with open(path, "w", opener=private_opener) as handle:
        handle.write(key)
    return key


def _public_url(raw: str | None) -> str | None:
    url = (raw or "").strip().rstrip("/")
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or "@" in parts.netloc \
            or host_name(parts.netloc) is None or parts.query or parts.fragment:
        raise ConfigError(f"{PREFIX}PUBLIC_URL must be an http(s) address like "
                          f"https://notary.example.org, not {raw!r}")
    return url


MAX_NOTARY_NAME = 200


def _notary_name(raw: str | None) -> str:
    name = " ".join((raw or "").split())
    if len(name) > MAX_NOTARY_NAME:
        raise ConfigError(f"{PREFIX}NOTARY_NAME is longer than {MAX_NOTARY_NAME} characters")
    return name or Settings.notary_name


def _allowed_hosts(raw: str | None, chain: str, public_url: str | None) -> tuple[str, ...]:
    """The host names requests may name (any port): those configured, else the local
    ones on the local chain, and the public URL's in any case."""
    names = [name.strip().lower() for name in (raw or "").split(",") if name.strip()]
    for name in names:
        if name != ANY_HOST and not re.fullmatch(_HOST_NAME, name.removeprefix(".")):
            raise ConfigError(
                f"{PREFIX}ALLOWED_HOSTS: {name!r} is not a host name (no scheme or port; an "
                "IPv6 address in brackets; .example.org for it and its subdomains; * for any)")
    if not names and chain == "local":
        names = list(LOCAL_HOSTS)
    if public_url:
        names.append(host_name(urlsplit(public_url).netloc))
    return tuple(dict.fromkeys(names))


def load_settings(environ: dict[str, str] | None = None, *, create: bool = True) -> Settings:
    """Read the configuration; ``environ`` replaces the process environment and ``.env``.

    Only with ``create`` may a missing instance folder and secret key be made: commands that
    only use an existing instance pass False, so that run from the wrong folder they leave
    nothing behind (their secret key is then one of their own, never stored).
    """
    values = _raw_values(environ)
    get = lambda name: values.get(PREFIX + name) or None  # noqa: E731
    instance = Path(get("INSTANCE_PATH")).resolve()
    make_instance_private(instance)
    chain = (get("CHAIN") or "local").lower()
    if chain not in CHAINS:
        raise ConfigError(f"{PREFIX}CHAIN must be one of {', '.join(CHAINS)}, not {chain!r}")
    preset = CHAINS[chain]
    rpc_urls = [u.strip() for u in (get("CHAIN_RPC_URL") or "").split(",") if u.strip()]
    rpc_urls = rpc_urls or list(preset.rpc_urls)
    if not rpc_urls:
        raise ConfigError(f"{PREFIX}CHAIN_RPC_URL is required on chain {chain!r}")
    key_file = get("ANCHOR_KEY_FILE")
    public_url = _public_url(get("PUBLIC_URL"))
    settings = Settings(
        instance_path=instance,
        database_url=get("DATABASE_URL") or f"sqlite:///{instance / 'trialnotary.sqlite3'}",
        chain=chain,
        rpc_urls=rpc_urls,
        chain_id=_number(values, "CHAIN_ID", preset.chain_id, int, 1),
        anchor_key_file=Path(key_file) if key_file else None,
        seal_interval_seconds=_number(values, "SEAL_INTERVAL_SECONDS", 60.0, float, 0.1),
        max_batch=_number(values, "MAX_BATCH", 100_000, int, 1),
        confirmations=_confirmations(get("CONFIRMATIONS") or str(preset.confirmations)),
        max_fee_gwei=_number(values, "MAX_FEE_GWEI", preset.max_fee_gwei, float, 0),
        secret_key=_secret_key(instance, get("SECRET_KEY"), create),
        session_idle_minutes=_number(values, "SESSION_IDLE_MINUTES", 15.0, float, 1),
        secure_cookies=_flag(values, "SECURE_COOKIES", default=chain != "local"),
        ratelimit_storage_url=get("RATELIMIT_STORAGE_URL") or "memory://",
        login_rate_limit=_rate_limit(values, "LOGIN_RATE_LIMIT", "10 per minute"),
        lookup_rate_limit=_rate_limit(values, "LOOKUP_RATE_LIMIT", "30 per minute"),
        trusted_proxies=_number(values, "TRUSTED_PROXIES", 0, int, 0),
        public_url=public_url,
        notary_name=_notary_name(get("NOTARY_NAME")),
        allowed_hosts=_allowed_hosts(get("ALLOWED_HOSTS"), chain, public_url),
        site_token_days=_number(values, "SITE_TOKEN_DAYS", 90.0, float, 0) or None,
        resend_after_seconds=_number(values, "RESEND_AFTER_SECONDS",
                                     preset.resend_after_seconds, float, 0),
        replace_after_seconds=_number(values, "REPLACE_AFTER_SECONDS",
                                      preset.replace_after_seconds, float, 0),
        write_lock_timeout_seconds=_number(values, "WRITE_LOCK_TIMEOUT_SECONDS", 5.0, float,
                                           0.1),
        instance_origin=values[_ORIGIN],
    )
    return _with_anchors(settings, values)


def _with_anchors(settings: Settings, values: dict) -> Settings:
    """``settings`` with its anchors: the ``[[anchors]]`` tables (the first EVM one then
    stands for the chain settings, which are ignored, in every default they decide), else
    the one configured chain."""
    tables = values.get(_ANCHORS)
    if tables is None:
        single = AnchorSpec(name=settings.chain, kind=EVM, chain=settings.chain,
                            chain_id=settings.chain_id, rpc_urls=tuple(settings.rpc_urls),
                            key_file=settings.anchor_key_file,
                            confirmations=settings.confirmations,
                            max_fee_gwei=settings.max_fee_gwei)
        return dataclasses.replace(settings, anchors=(single,))
    try:
        specs = parse_anchor_tables(tables, CHAINS)
    except AnchorConfigError as exc:
        raise ConfigError(str(exc)) from None
    first = next((spec for spec in specs if spec.kind == EVM), None)
    if first is None:
        raise ConfigError("config.toml [[anchors]]: at least one anchor must be of kind evm")
    main = dataclasses.replace(settings, anchors=specs, anchor_tables=True).for_anchor(first)
    return dataclasses.replace(
        main, secure_cookies=_flag(values, "SECURE_COOKIES", default=main.chain != "local"),
        allowed_hosts=_allowed_hosts(values.get(PREFIX + "ALLOWED_HOSTS"), main.chain,
                                     main.public_url))
