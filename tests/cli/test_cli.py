"""The administration and chain commands, run as a user would (same configuration)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from sqlmodel import Session, select

from tests.conftest import ANVIL_ACCOUNTS, insert_registrations
from trialnotary.cli import main
from trialnotary.config import load_settings
from trialnotary.notary import scheduler
from trialnotary.people import sites


@pytest.fixture
def cli(settings_env):
    runner = CliRunner()

    def invoke(*args):
        return runner.invoke(main, list(args), env=settings_env, catch_exceptions=False)
    return invoke


def test_admin_commands_create_a_trial_a_site_and_a_token(cli, engine):
    result = cli("trial", "add", "nct 0123 4567", "--title", "Trial A")
    assert result.exit_code == 0 and "NCT01234567" in result.output
    assert cli("site", "add", "NCT01234567", "SITE-01", "--name", "Lyon").exit_code == 0
    result = cli("token", "create", "SITE-01", "--expires-in", "30")
    assert result.exit_code == 0
    token = result.stdout.strip().splitlines()[-1]
    with Session(engine) as session:
        assert sites.authenticate(session, token).site == "SITE-01"
        stored = session.execute(sa.text("SELECT digest, prefix FROM site_token")).one()
    assert token not in stored and stored.digest == sites.token_digest(token)


def test_admin_commands_refuse_bad_input_clearly(cli):
    result = cli("trial", "add", "NCT123")
    assert result.exit_code == 1 and "not a trial registry id" in result.output
    assert cli("trial", "add", "NCT01234567").exit_code == 0
    result = cli("trial", "add", "NCT01234567")
    assert result.exit_code == 1 and "already exists" in result.output
    result = cli("site", "add", "NCT07654321", "SITE-01")
    assert result.exit_code == 1 and "unknown trial" in result.output
    result = cli("site", "add", "NCT01234567", "bad site!")
    assert result.exit_code == 1 and "site" in result.output
    result = cli("token", "create", "NOPE")
    assert result.exit_code == 1 and "unknown site" in result.output


def test_a_sponsor_protocol_id_needs_the_flag(cli):
    assert cli("trial", "add", "ABC-123").exit_code == 1
    result = cli("trial", "add", "ABC-123", "--protocol-id")
    assert result.exit_code == 0 and "ABC-123" in result.output


def test_commands_refuse_an_unmigrated_database(settings_env, tmp_path):
    env = {**settings_env, "TRIALNOTARY_DATABASE_URL": f"sqlite:///{tmp_path / 'new.sqlite3'}"}
    result = CliRunner().invoke(main, ["trial", "add", "NCT01234567"], env=env)
    assert result.exit_code == 1 and "trialnotary db upgrade" in result.output
    assert CliRunner().invoke(main, ["db", "upgrade"], env=env).exit_code == 0
    assert CliRunner().invoke(main, ["trial", "add", "NCT01234567"], env=env).exit_code == 0


def test_seal_now_with_nothing_pending_is_not_an_error(cli):
    first = cli("seal-now")  # a new notary's identity: its first version is an audit entry
    assert first.exit_code == 0 and "the audit head alone (entry 1)" in first.output
    result = cli("seal-now")
    assert result.exit_code == 0 and "nothing pending" in result.output


def test_seal_now_seals_anchors_and_waits_for_confirmation(cli, engine):
    insert_registrations(engine, 3)
    result = cli("seal-now", "--wait")
    assert result.exit_code == 0, result.output
    assert "sealed batch 1: 4 leaves" in result.output  # and the audit head (the identity)
    assert "batch 1: transaction 0x" in result.output
    assert "batch 1: confirmed" in result.output


def test_chain_status_shows_the_account_and_the_node(cli):
    result = cli("chain", "status")
    assert result.exit_code == 0
    assert ANVIL_ACCOUNTS[0] in result.output
    assert "node chain:   31337" in result.output and "balance:" in result.output


def test_chain_status_reports_a_dead_node(cli, settings_env):
    env = {**settings_env, "TRIALNOTARY_CHAIN_RPC_URL": "http://127.0.0.1:9"}
    result = CliRunner().invoke(main, ["chain", "status"], env=env)
    assert result.exit_code == 0 and "unreachable" in result.output


def test_a_second_scheduler_on_one_sqlite_file_is_refused(settings_env, tmp_path):
    url = f"sqlite:///{tmp_path / 'one.sqlite3'}"
    settings = load_settings({**settings_env, "TRIALNOTARY_DATABASE_URL": url})
    first = scheduler.start(settings, background=True)
    try:
        with pytest.raises(scheduler.SchedulerAlreadyRunning, match="already runs"):
            scheduler.start(settings, background=True)
    finally:
        first.shutdown(wait=True)
    scheduler.start(settings, background=True).shutdown(wait=True)  # free again


def test_a_token_made_on_the_command_line_expires_after_the_configured_days(
        cli, engine, settings_env):
    from datetime import timedelta

    from trialnotary.db import as_utc
    from trialnotary.people.models import SiteToken

    assert cli("trial", "add", "NCT01234567").exit_code == 0
    assert cli("site", "add", "NCT01234567", "SITE-01").exit_code == 0

    def lifetime(*args, **env) -> tuple[float | None, str]:
        extra = {f"TRIALNOTARY_{key}": value for key, value in env.items()}
        result = CliRunner().invoke(main, ["token", "create", "SITE-01", *args],
                                    env={**settings_env, **extra}, catch_exceptions=False)
        assert result.exit_code == 0, result.output
        token = result.stdout.strip().splitlines()[-1]
        with Session(engine) as session:
            row = session.exec(select(SiteToken).where(
                SiteToken.digest == sites.token_digest(token))).one()
        days = None if row.expires_at is None else \
            (as_utc(row.expires_at) - as_utc(row.created_at)) / timedelta(days=1)
        return days, result.stderr

    days, said = lifetime()
    assert days == pytest.approx(90, abs=0.01) and "expires in 90 days" in said
    assert lifetime("--expires-in", "2")[0] == pytest.approx(2, abs=0.01)
    assert lifetime(SITE_TOKEN_DAYS="7")[0] == pytest.approx(7, abs=0.01)
    days, said = lifetime(SITE_TOKEN_DAYS="0")
    assert days is None and "never expires" in said
    assert lifetime("--expires-in", "3", SITE_TOKEN_DAYS="0")[0] == pytest.approx(3, abs=0.01)


BIN = Path(sys.executable).parent
READING_COMMANDS = [["chain", "status"], ["seal-now"], ["check"]]


def run_as_user(args: list[str], cwd: Path, **settings: str) -> subprocess.CompletedProcess:
    """``trialnotary ARGS`` in ``cwd``, as a user who set no TRIALNOTARY_* variable but these."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRIALNOTARY_")}
    return subprocess.run([BIN / "trialnotary", *args], cwd=cwd, env={**env, **settings},
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("command", READING_COMMANDS, ids=" ".join)
def test_reading_commands_outside_a_project_name_the_path_and_create_nothing(tmp_path,
                                                                             command):
    result = run_as_user(command, tmp_path)
    assert result.returncode == 1
    first_line, error = result.stderr.splitlines()[:2]
    assert first_line.startswith(f"instance {tmp_path / 'instance'} (the default")
    assert f"no database at {tmp_path / 'instance' / 'trialnotary.sqlite3'}" in error
    assert "TRIALNOTARY_INSTANCE_PATH" in error and "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_reading_commands_find_the_instance_from_a_subfolder(tmp_path, anvil):
    project, below = tmp_path / "project", tmp_path / "project" / "data" / "site-1"
    below.mkdir(parents=True)
    upgraded = run_as_user(["db", "upgrade"], project)
    assert upgraded.returncode == 0, upgraded.stderr
    for command in READING_COMMANDS:
        result = run_as_user(command, below, TRIALNOTARY_CHAIN_RPC_URL=anvil.url)
        assert result.returncode == 0, result.stdout + result.stderr
        assert result.stderr.startswith(f"instance {project / 'instance'} (found above the "
                                        f"working folder {below}); database sqlite:///")
    assert list(below.iterdir()) == [] and sorted(project.iterdir()) == [
        project / "data", project / "instance"]


def test_the_instance_is_not_looked_for_above_a_git_checkout(tmp_path):
    checkout = tmp_path / "clone"
    (tmp_path / "instance").mkdir()
    (checkout / ".git").mkdir(parents=True)
    result = run_as_user(["check"], checkout)
    assert result.returncode == 1
    assert f"no database at {checkout / 'instance' / 'trialnotary.sqlite3'}" in result.stderr
    assert sorted(p.name for p in checkout.iterdir()) == [".git"]


def test_the_location_line_hides_a_database_password(tmp_path):
    result = run_as_user(["check"], tmp_path, TRIALNOTARY_DATABASE_URL=
                         "postgresql://notary:s3cret@127.0.0.1:9/none")
    assert "postgresql://notary:***@127.0.0.1:9/none" in result.stderr
    assert "s3cret" not in result.stdout + result.stderr
    assert "cannot open the database: connection failed" in result.stderr
    assert "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_token_revoke_finds_a_site_or_user_token_by_its_listed_prefix(cli, engine):
    from trialnotary.people import accounts, user_tokens
    from trialnotary.people.models import SiteToken, UserToken

    assert cli("trial", "add", "NCT01234567").exit_code == 0
    assert cli("site", "add", "NCT01234567", "SITE-01").exit_code == 0
    site_token = cli("token", "create", "SITE-01").stdout.strip().splitlines()[-1]
    with Session(engine) as session:
        user, _ = accounts.create_user(session, "s@example.org", "sponsor", actor="test")
        user_token = user_tokens.create_user_token(session, user, actor="test")
        session.commit()
        site_prefix = session.exec(select(SiteToken.prefix)).one()
        user_prefix = session.exec(select(UserToken.prefix)).one()

    result = cli("token", "revoke", site_prefix)
    assert result.exit_code == 0 and f"token {site_prefix}… revoked" in result.output
    assert cli("token", "revoke", user_prefix).exit_code == 0
    with Session(engine) as session:
        assert sites.authenticate(session, site_token) is None
        assert user_tokens.authenticate_user_token(session, user_token).user is None
    result = cli("token", "revoke", "tn_site_nothing")
    assert result.exit_code == 1 and "prefix: names no token" in result.output
