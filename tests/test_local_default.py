"""The local default as a user runs it: `trialnotary up`, stopped and started again."""

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from .conftest import free_port

BIN = Path(sys.executable).parent


def start_up(env: dict, port: int) -> subprocess.Popen:
    process = subprocess.Popen([BIN / "trialnotary", "up", "--port", str(port)], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
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
        submission_id = receipt_file.name.split("_")[-1].removesuffix(".receipt.json")
        again = requests.get(f"{server}/api/v1/submissions/{submission_id}/receipt", timeout=5)
        assert again.status_code == 200
        assert again.json() == json.loads(receipt_file.read_text())
        verified = subprocess.run(
            [BIN / "trialnotary", "verify", str(receipt_file), "--file", str(data),
             "--rpc", env["TRIALNOTARY_CHAIN_RPC_URL"]],
            env=env, capture_output=True, text=True, timeout=30)
        assert verified.returncode == 3, verified.stdout + verified.stderr  # passed, unpinned
        assert verified.stdout.startswith("This file is the one registered as")
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
    root = Path(__file__).resolve().parents[1]
    ignored = subprocess.run(["git", "check-ignore", "--no-index", "-q",
                              "receipts/NCT01234567_ADSL_1.receipt.json"], cwd=root, timeout=30)
    assert ignored.returncode == 0
