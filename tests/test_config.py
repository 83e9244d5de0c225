"""Configuration: defaults per chain, overrides, and clear errors."""

import os

import pytest

from trialnotary.config import ANVIL_DEV_KEY, ConfigError, load_settings


def test_local_defaults(tmp_path):
    settings = load_settings({"TRIALNOTARY_INSTANCE_PATH": str(tmp_path)})
    assert settings.chain == "local" and settings.chain_id == 31337
    assert settings.rpc_urls == ["http://127.0.0.1:8545"]
    assert settings.confirmations == 2
    assert settings.seal_interval_seconds == 60 and settings.max_batch == 100_000
    assert settings.database_url == f"sqlite:///{tmp_path / 'trialnotary.sqlite3'}"
    assert settings.anchor_key() == ANVIL_DEV_KEY


def test_secret_key_is_generated_once_into_the_instance_folder(tmp_path):
    first = load_settings({"TRIALNOTARY_INSTANCE_PATH": str(tmp_path)}).secret_key
    second = load_settings({"TRIALNOTARY_INSTANCE_PATH": str(tmp_path)}).secret_key
    assert first == second and len(first) == 64
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0


def test_without_create_nothing_is_written(tmp_path):
    settings = load_settings({"TRIALNOTARY_INSTANCE_PATH": str(tmp_path / "instance")},
                             create=False)
    assert len(settings.secret_key) == 64
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
def user_shell(monkeypatch):
    """A process environment with no TRIALNOTARY_* variable; ``cd`` changes folder."""
    for name in [n for n in os.environ if n.startswith("TRIALNOTARY_")]:
        monkeypatch.delenv(name)
    return monkeypatch.chdir


def test_a_project_env_file_is_found_from_a_subfolder(tmp_path, user_shell):
    (tmp_path / ".env").write_text("TRIALNOTARY_INSTANCE_PATH=var/notary\n"
                                   "TRIALNOTARY_MAX_BATCH=42\n")
    (tmp_path / "data" / "site").mkdir(parents=True)
    user_shell(tmp_path / "data" / "site")
    settings = load_settings(create=False)
    assert settings.instance_path == tmp_path / "var" / "notary"
    assert settings.max_batch == 42
    assert settings.instance_origin == f"from TRIALNOTARY_INSTANCE_PATH in {tmp_path / '.env'}"


def test_another_tools_env_file_does_not_make_a_project(tmp_path, user_shell):
    (tmp_path / ".env").write_text("DJANGO_DEBUG=1\n")
    (tmp_path / "work").mkdir()
    user_shell(tmp_path / "work")
    settings = load_settings(create=False)
    assert settings.instance_path == tmp_path / "work" / "instance"
    assert not (tmp_path / "work" / "instance").exists()


def test_public_chains_need_a_url_and_a_key_file(tmp_path):
    base = {"TRIALNOTARY_INSTANCE_PATH": str(tmp_path), "TRIALNOTARY_CHAIN": "sepolia"}
    with pytest.raises(ConfigError, match="CHAIN_RPC_URL"):
        load_settings(base)
    settings = load_settings({**base, "TRIALNOTARY_CHAIN_RPC_URL": "https://a.example, https://b.example"})
    assert settings.rpc_urls == ["https://a.example", "https://b.example"]
    assert settings.chain_id == 11155111 and settings.confirmations == "finalized"
    with pytest.raises(ConfigError, match="ANCHOR_KEY_FILE"):
        settings.anchor_key()
    key_file = tmp_path / "key"
    key_file.write_text("ab" * 32 + "\n")
    settings = load_settings({**base, "TRIALNOTARY_CHAIN_RPC_URL": "https://a.example",
                              "TRIALNOTARY_ANCHOR_KEY_FILE": str(key_file)})
    assert settings.anchor_key() == "0x" + "ab" * 32


def test_instance_config_file_is_read_and_the_environment_wins(tmp_path):
    (tmp_path / "config.toml").write_text('TRIALNOTARY_MAX_BATCH = 500\n'
                                          'TRIALNOTARY_CONFIRMATIONS = "finalized"\n')
    settings = load_settings({"TRIALNOTARY_INSTANCE_PATH": str(tmp_path)})
    assert settings.max_batch == 500 and settings.confirmations == "finalized"
    settings = load_settings({"TRIALNOTARY_INSTANCE_PATH": str(tmp_path),
                              "TRIALNOTARY_MAX_BATCH": "7"})
    assert settings.max_batch == 7


@pytest.mark.parametrize(("name", "value", "message"), [
    ("TRIALNOTARY_CHAIN", "ropsten", "must be one of"),
    ("TRIALNOTARY_CONFIRMATIONS", "0", "CONFIRMATIONS"),
    ("TRIALNOTARY_CONFIRMATIONS", "soon", "CONFIRMATIONS"),
    ("TRIALNOTARY_MAX_BATCH", "lots", "MAX_BATCH must be a number"),
    ("TRIALNOTARY_SEAL_INTERVAL_SECONDS", "0", "at least"),
    ("TRIALNOTARY_LOOKUP_RATE_LIMIT", "lots", "LOOKUP_RATE_LIMIT must be a rate"),
    ("TRIALNOTARY_LOGIN_RATE_LIMIT", "10 per fortnight", "LOGIN_RATE_LIMIT must be a rate"),
    ("TRIALNOTARY_WRITE_LOCK_TIMEOUT_SECONDS", "0", "WRITE_LOCK_TIMEOUT_SECONDS"),
])
def test_bad_values_name_their_variable(tmp_path, name, value, message):
    with pytest.raises(ConfigError, match=message):
        load_settings({"TRIALNOTARY_INSTANCE_PATH": str(tmp_path), name: value})


ANCHOR_TABLES = """
[[anchors]]
name = "sepolia"
kind = "evm"
chain = "sepolia"
rpc = ["https://rpc.sepolia.example/KEY"]
key_file = "/etc/trialnotary/sepolia.key"
retire_on = 2027-09-30

[[anchors]]
name = "daily"
kind = "evm"
chain = 1
rpc = "https://rpc.mainnet.example"
key_file = "/etc/trialnotary/mainnet.key"
every = "24h"

[[anchors]]
name = "tsa"
kind = "rfc3161"
url = "https://tsa.example/tsr"
ca_file = "/etc/trialnotary/tsa-ca.pem"
"""


def write_config(tmp_path, text: str) -> dict:
    instance = tmp_path / "instance"
    instance.mkdir(mode=0o700, exist_ok=True)
    (instance / "config.toml").write_text(text)
    return {"TRIALNOTARY_INSTANCE_PATH": str(instance)}


def test_anchor_tables_replace_the_chain_settings(tmp_path):
    env = write_config(tmp_path, ANCHOR_TABLES)
    settings = load_settings({**env, "TRIALNOTARY_CHAIN": "local",
                              "TRIALNOTARY_CHAIN_ID": "999"})
    sepolia, daily, tsa = settings.anchors
    assert (sepolia.name, sepolia.chain_id, sepolia.every, str(sepolia.retire_on)) == \
        ("sepolia", 11155111, "batch", "2027-09-30")
    assert (daily.chain, daily.chain_id, daily.every_seconds, daily.every) == \
        ("mainnet", 1, 86400, "24h")
    assert (tsa.kind, tsa.url, tsa.every_seconds) == ("rfc3161", "https://tsa.example/tsr",
                                                       None)
    # The chain settings are the first EVM anchor's, whatever TRIALNOTARY_CHAIN* say.
    assert (settings.chain, settings.chain_id, settings.confirmations) == \
        ("sepolia", 11155111, "finalized")
    assert settings.for_anchor(daily).chain_id == 1
    assert settings.for_anchor(daily).anchor_key_file.name == "mainnet.key"


def test_without_anchor_tables_the_chain_is_the_one_anchor(tmp_path):
    settings = load_settings({"TRIALNOTARY_INSTANCE_PATH": str(tmp_path / "instance")})
    [only] = settings.anchors
    assert (only.name, only.kind, only.chain_id) == ("local", "evm", 31337)
    assert settings.for_anchor(only) is settings


@pytest.mark.parametrize("table, message", [
    ('name = "a"\nkind = "evm"\nchain = "local"\n[[anchors]]\nname = "a"\nkind = "evm"\n'
     'chain = 5\nrpc = ["http://x"]\nkey_file = "k"', "used twice"),
    ('name = "a"\nkind = "ots"', "kind must be evm or rfc3161"),
    ('name = "A b"\nkind = "evm"', "name must be"),
    ('name = "a"\nkind = "evm"\nchain = "sepolia"\nrpc = ["https://x"]', "key_file is required"),
    ('name = "a"\nkind = "evm"\nchain = "sepolia"\nkey_file = "k"', "rpc is required"),
    ('name = "a"\nkind = "evm"\nchain = "goerli"', "chain must be one of"),
    ('name = "a"\nkind = "evm"\nchain = "local"\nevery = "daily"', "every must be"),
    ('name = "a"\nkind = "evm"\nchain = "local"\nretire_on = "soon"', "retire_on must be a date"),
    ('name = "a"\nkind = "evm"\nchain = "local"\ncolour = "red"', "unknown key(s) colour"),
    ('name = "t"\nkind = "rfc3161"\nurl = "https://tsa"', "ca_file"),
    ('name = "t"\nkind = "rfc3161"\nurl = "https://tsa"\nca_file = "c"\nchain = "local"',
     "chain is for evm anchors"),
    ('name = "t"\nkind = "rfc3161"\nurl = "https://tsa"\nca_file = "c"',
     "at least one anchor must be of kind evm"),
])
def test_bad_anchor_tables_name_the_anchor_and_the_key(tmp_path, table, message):
    env = write_config(tmp_path, "[[anchors]]\n" + table + "\n")
    with pytest.raises(ConfigError, match="config.toml") as caught:
        load_settings(env)
    assert message in str(caught.value)
