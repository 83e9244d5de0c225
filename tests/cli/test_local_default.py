"""The local default as a user runs it: `trialnotary up`, stopped and started again."""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.conftest import free_port

BIN = Path(sys.executable).parent


def start_up(env: dict, port: int, **popen) -> subprocess.Popen:
    process = subprocess.Popen([BIN / "trialnotary", "up", "--port", str(port)], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               **popen)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if requests.get(f"http://127.0.0.1:{port}/api/v1/healthz", timeout=1).ok:
                return process
        except requests.ConnectionError:
            time.sleep(0.2)
        if process.poll() is not None:
            break
    process.kill()
    pytest.fail("trialnotary up did not start:\n" + process.stdout.read())


def stop(process: subprocess.Popen) -> str:
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=30)
    return output


@pytest.mark.slow
def test_up_serves_seeds_demo_data_and_keeps_everything_across_a_restart(tmp_path):
    chain_port, web_port = free_port(), free_port()
    env = {**os.environ, "TRIALNOTARY_INSTANCE_PATH": str(tmp_path / "instance"),
           "TRIALNOTARY_CHAIN_RPC_URL": f"http://127.0.0.1:{chain_port}",
           "TRIALNOTARY_SEAL_INTERVAL_SECONDS": "1"}
    env.pop("TRIALNOTARY_DATABASE_URL", None)
    server = f"http://127.0.0.1:{web_port}"
    data = tmp_path / "adsl.xpt"
    data.write_bytes(b"SDTM export\n" * 100)
    other = tmp_path / "adae.xpt"
    other.write_bytes(b"adverse events\n" * 50)

    process = start_up(env, web_port)
    try:
        token = (tmp_path / "instance/demo-token").read_text().strip()
        for path in (data, other):  # two runs, as a user would: several receipts
            submitted = subprocess.run(
                [BIN / "trialnotary", "submit", str(path), "--trial", "NCT01234567",
                 "--site", "DEMO-SITE", "--wait", "--out", str(tmp_path / "receipts"),
                 "--json", "--server", server, "--token", token],
                env=env, capture_output=True, text=True, timeout=90)
            assert submitted.returncode == 0, submitted.stdout + submitted.stderr
        [receipt_file] = (tmp_path / "receipts").glob("*adsl*")
        assert len(list((tmp_path / "receipts").iterdir())) == 2
        time.sleep(6)  # past anvil's state interval; a clean stop dumps the state too
    finally:
        output = stop(process)
    assert token in output and "DEMO-SITE" in output  # the printed demo credentials
    logins = json.loads((tmp_path / "instance/demo-logins.json").read_text())
    assert set(logins) == {"admin@demo.local", "sponsor@demo.local", "coordinator@demo.local"}
    database = (tmp_path / "instance/trialnotary.sqlite3").read_bytes()
    for email, password in logins.items():
        assert f"{email}  password {password}" in output  # printed, one per role
        assert password.encode() not in database  # kept only as an Argon2id hash
    assert not database.count(token.encode())
    instance = tmp_path / "instance"  # the chain's state too: every file its owner's alone
    assert {path.name: oct(path.stat().st_mode) for path in [instance, *instance.iterdir()]
            if path.stat().st_mode & 0o077} == {}

    process = start_up(env, web_port)
    try:
        assert (tmp_path / "instance/demo-token").read_text().strip() == token
        for email, password in logins.items():  # the same sign-ins work after a restart
            browser = requests.Session()
            page = browser.get(f"{server}/login", timeout=5).text
            csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
            signed_in = browser.post(f"{server}/login", timeout=10, allow_redirects=False,
                                     data={"email": email, "password": password,
                                           "csrf_token": csrf})
            assert signed_in.status_code == 302 and "tn_session" in browser.cookies
        registration_id = receipt_file.name.split("_")[-1].removesuffix(".receipt.json")
        again = requests.get(f"{server}/api/v1/submissions/{registration_id}/receipt", timeout=5)
        assert again.status_code == 200
        assert again.json() == json.loads(receipt_file.read_text())
        verified = subprocess.run(
            [BIN / "trialnotary", "verify", str(receipt_file), "--file", str(data),
             "--rpc", env["TRIALNOTARY_CHAIN_RPC_URL"], "--notary", server],
            env=env, capture_output=True, text=True, timeout=30)
        assert verified.returncode == 0, verified.stdout + verified.stderr  # passed, pinned
        assert verified.stdout.startswith("This file is the one registered as")
        assert "✓ notary" in verified.stdout
        # the verify command `up` prints, run verbatim in the folder holding receipts/
        [hint] = [line.strip() for line in output.splitlines()
                  if line.strip().startswith("trialnotary verify ")]
        verified = subprocess.run(["bash", "-c", hint], cwd=tmp_path, capture_output=True,
                                  text=True, timeout=60,
                                  env={**env, "PATH": f"{BIN}{os.pathsep}{env['PATH']}"})
        assert verified.returncode == 0, hint + "\n" + verified.stdout + verified.stderr
        assert verified.stdout.count("The receipt is genuine, but no file was checked") == 2
    finally:
        output = stop(process)
    assert "other users could read" not in output


def test_the_receipts_folder_of_the_printed_commands_is_ignored_by_git():
    root = Path(__file__).resolve().parents[2]
    ignored = subprocess.run(["git", "check-ignore", "--no-index", "-q",
                              "receipts/NCT01234567_ADSL_1.receipt.json"], cwd=root, timeout=30)
    assert ignored.returncode == 0


def local_env(tmp_path: Path, chain_port: int) -> dict:
    env = {**os.environ, "TRIALNOTARY_INSTANCE_PATH": str(tmp_path / "instance"),
           "TRIALNOTARY_CHAIN_RPC_URL": f"http://127.0.0.1:{chain_port}"}
    env.pop("TRIALNOTARY_DATABASE_URL", None)
    return env


def up_once(env: dict, port: int) -> subprocess.CompletedProcess:
    return subprocess.run([BIN / "trialnotary", "up", "--port", str(port)], env=env,
                          capture_output=True, text=True, timeout=60)


def refused_in_one_line(result: subprocess.CompletedProcess, *fragments: str) -> None:
    assert result.returncode == 1
    assert result.stdout == "" and len(result.stderr.splitlines()) == 1, result.stderr
    for fragment in fragments:
        assert fragment in result.stderr


def anvil_child(process: subprocess.Popen) -> int:
    [child] = {int(pid) for children in Path(f"/proc/{process.pid}/task").glob("*/children")
               for pid in children.read_text().split()}
    return child


@pytest.mark.slow
def test_up_refuses_a_second_instance_or_a_taken_port_and_stops_on_sigint_even_if_ignored(
        tmp_path):
    """Started as a background job of a script (SIGINT ignored), `up` still stops cleanly on
    SIGINT; a second `up`, or one whose ports are taken, says why in one line, before any
    banner, and creates nothing."""
    chain_port, web_port = free_port(), free_port()
    env = local_env(tmp_path / "a", chain_port)
    process = start_up(env, web_port,
                       preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    anvil = anvil_child(process)
    try:
        refused_in_one_line(up_once(env, free_port()), "already runs on this instance",
                            str(tmp_path / "a" / "instance"))
        other = local_env(tmp_path / "b", chain_port)
        refused_in_one_line(up_once(other, web_port), f"port {web_port} on 127.0.0.1 is "
                            "already in use", f"PORT={web_port + 1} make run")
        with socket.create_server(("127.0.0.1", 0)) as not_a_node:
            busy = local_env(tmp_path / "b", not_a_node.getsockname()[1])
            refused_in_one_line(up_once(busy, free_port()), "is not a chain node",
                                "TRIALNOTARY_CHAIN_RPC_URL=")
        assert not (tmp_path / "b").exists()
    finally:
        process.send_signal(signal.SIGINT)
        try:
            output, _ = process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            for pid in (process.pid, anvil):  # anvil runs in a session of its own
                os.kill(pid, signal.SIGKILL)
            raise
    assert process.returncode == 0, output
    assert "Traceback" not in output and "stopped: the local chain's state" in output
    assert not Path(f"/proc/{anvil}").exists()


@pytest.mark.slow
def test_up_stops_when_its_local_chain_dies(tmp_path):
    process = start_up(local_env(tmp_path, free_port()), free_port())
    try:
        os.kill(anvil_child(process), signal.SIGKILL)
        output, _ = process.communicate(timeout=30)
    finally:
        process.kill()
        process.wait()
    assert process.returncode == 1
    assert "the local chain (anvil) stopped by itself (killed by signal 9)" in output
    assert "Traceback" not in output
