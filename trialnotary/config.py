"""Configuration shared by the server, the scheduler and every CLI command.

Sources, later ones winning: built-in defaults, ``<instance>/config.toml`` (keys are the
environment variable names), a ``.env`` file in the project folder, the environment.

The project folder is the working folder, or the nearest folder above it that holds an
``instance/`` folder or a ``.env`` file setting TRIALNOTARY_* variables (as git finds
``.git``, but never above the root of a git checkout); the instance is
``TRIALNOTARY_INSTANCE_PATH`` when set, else ``<project folder>/instance``. So every command
finds the server's instance from any folder inside the project.
"""

from __future__ import annotations

import os
import secrets
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from dotenv import dotenv_values

PREFIX = "TRIALNOTARY_"

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


class ConfigError(ValueError):
    """A configuration value that cannot be used; the message names the variable."""


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
    trusted_proxies: int = 0
    public_url: str | None = None
    resend_after_seconds: float = 10.0
    replace_after_seconds: float = 30.0
    instance_origin: str = "given"  # how the instance folder was found, for messages

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


def _raw_values(environ: dict[str, str] | None) -> dict[str, str]:
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
            values.update({k: str(v) for k, v in tomllib.load(fh).items()})
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


def _flag(values: dict, name: str, *, default: bool) -> bool:
    raw = (values.get(PREFIX + name) or "").strip().lower()
    if raw == "":
        return default
    if raw not in ("1", "true", "yes", "0", "false", "no"):
        raise ConfigError(f"{PREFIX}{name} must be true or false, not {raw!r}")
    return raw in ("1", "true", "yes")


def _secret_key(instance: Path, configured: str | None, create: bool) -> str:
    if configured:
        return configured
    path = instance / "secret_key"
    if path.exists():
        return path.read_text().strip()
    if not create:
        return secrets.token_hex(32)  # signs nothing that outlives this process
    instance.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32)
    path.touch(mode=0o600)
    path.write_text(key)
    return key


def load_settings(environ: dict[str, str] | None = None, *, create: bool = True) -> Settings:
    """Read the configuration; ``environ`` replaces the process environment and ``.env``.

    Only with ``create`` may a missing instance folder and secret key be made: commands that
    only use an existing instance pass False, so that run from the wrong folder they leave
    nothing behind (their secret key is then one of their own, never stored).
    """
    values = _raw_values(environ)
    get = lambda name: values.get(PREFIX + name) or None  # noqa: E731
    instance = Path(get("INSTANCE_PATH")).resolve()
    chain = (get("CHAIN") or "local").lower()
    if chain not in CHAINS:
        raise ConfigError(f"{PREFIX}CHAIN must be one of {', '.join(CHAINS)}, not {chain!r}")
    preset = CHAINS[chain]
    rpc_urls = [u.strip() for u in (get("CHAIN_RPC_URL") or "").split(",") if u.strip()]
    rpc_urls = rpc_urls or list(preset.rpc_urls)
    if not rpc_urls:
        raise ConfigError(f"{PREFIX}CHAIN_RPC_URL is required on chain {chain!r}")
    key_file = get("ANCHOR_KEY_FILE")
    return Settings(
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
        login_rate_limit=get("LOGIN_RATE_LIMIT") or "10 per minute",
        trusted_proxies=_number(values, "TRUSTED_PROXIES", 0, int, 0),
        public_url=(get("PUBLIC_URL") or "").rstrip("/") or None,
        resend_after_seconds=_number(values, "RESEND_AFTER_SECONDS",
                                     preset.resend_after_seconds, float, 0),
        replace_after_seconds=_number(values, "REPLACE_AFTER_SECONDS",
                                      preset.replace_after_seconds, float, 0),
        instance_origin=values[_ORIGIN],
    )
