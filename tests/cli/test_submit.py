"""`trialnotary submit` and `trialnotary receipt`: the whole path against the real app served
by waitress on a free port, sealed on real anvil (the parts that need no server:
test_submit_offline.py)."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
import requests
import waitress
from click.testing import CliRunner
from sqlmodel import Session, select
from waitress import wasyncore

from tests.cli.conftest import sha256_of, write
from trialnotary.cli import api, client, main, receipts
from trialnotary.filenames import receipt_filename
from trialnotary.notary import anchoring, batches
from trialnotary.notary.models import Registration

TRIAL, SITE = "NCT01234567", "SITE-01"


# --- against the real server ---------------------------------------------------------

@pytest.fixture
def serve():
    """Serve a WSGI app with waitress on a free port; returns its base URL.

    The loop is ours, over a map we own, so that stopping is race-free: worker threads
    finish first, then the loop thread itself closes every socket. (Closing from another
    thread pulls sockets from under select(), and a closing thunk sent through waitress's
    trigger can run before the trigger's own write.)
    """
    servers = []

    def start(wsgi) -> str:
        sockets: dict = {}
        server = waitress.create_server(wsgi, map=sockets, host="127.0.0.1", port=0,
                                        threads=4)
        stop = threading.Event()

        def loop():
            while not stop.is_set():
                wasyncore.loop(timeout=0.05, map=sockets, count=1)
            wasyncore.close_all(sockets)

        thread = threading.Thread(target=loop, daemon=True)
        thread.start()
        servers.append((server, stop, thread))
        return f"http://127.0.0.1:{server.effective_port}"

    yield start
    for server, stop, thread in servers:
        server.task_dispatcher.shutdown()
        stop.set()
        thread.join(5)
        assert not thread.is_alive(), "the server did not stop"


@pytest.fixture
def settings_env(settings_env):
    """A short seal interval: the server's Retry-After for a pending registration follows
    it, and the client honours it (sealing itself is driven by the tests)."""
    return {**settings_env, "TRIALNOTARY_SEAL_INTERVAL_SECONDS": "2"}


@pytest.fixture
def server_url(app, serve):
    return serve(app)


def options(server_url, token, **overrides):
    return {"trial": TRIAL, "site": SITE, "kind": "dataset", "dataset": None,
            "supersedes": None, "wait": False, "out": None, "as_json": False,
            "server": server_url, "token": token, **overrides}


def registrations(engine) -> list[Registration]:
    with Session(engine) as session:
        return session.exec(select(Registration).order_by(Registration.seq)).all()


def confirm_everything(app, anvil, expected: int, timeout: float = 60) -> None:
    """Seal and anchor once ``expected`` registrations exist, then mine until confirmed."""
    engine, chain = app.extensions["trialnotary"].engine, app.extensions["trialnotary"].chain
    deadline = time.monotonic() + timeout
    while len(registrations(engine)) < expected:
        assert time.monotonic() < deadline, "the registrations never arrived"
        time.sleep(0.1)
    batches.seal_all(engine, 100_000)
    anchoring.anchor_sealed(engine, chain)
    while not anchoring.confirm_sent(engine, chain):
        assert time.monotonic() < deadline, "the anchor was never confirmed"
        anvil.mine(3)


def in_background(target, *args) -> threading.Thread:
    """Run ``target`` in a thread; ``thread.join_and_check()`` re-raises what it raised."""
    errors = []

    def guarded():
        try:
            target(*args)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test's thread
            errors.append(exc)

    thread = threading.Thread(target=guarded, daemon=True)
    thread.start()

    def join_and_check():
        thread.join(90)
        if errors:
            raise errors[0]

    thread.join_and_check = join_and_check
    return thread


def test_a_folder_is_registered_with_relative_file_names(server_url, site_token, study,
                                                         engine, capsys):
    assert client.run(paths=[str(study)], **options(server_url, site_token)) == 0
    out = capsys.readouterr().out.splitlines()
    rows = registrations(engine)
    assert [r.filename for r in rows] == ["A.txt", "a/deep/x.xpt", "a/z.txt", "a-b.txt",
                                          "b.txt"]
    for row, line in zip(rows, out[1:], strict=True):
        path = study.joinpath(*row.filename.split("/"))
        assert (row.trial, row.site, row.kind, row.dataset) == (TRIAL, SITE, "dataset",
                                                                "Study 1 (v2)")
        assert (row.sha256, row.size_bytes) == (sha256_of(path), path.stat().st_size)
        assert line.split() == ["pending", row.id, row.sha256, *str(path).split()]
        answer = requests.get(f"{server_url}/api/v1/submissions/{row.id}", timeout=10).json()
        assert answer["record"]["sha256"] == row.sha256


def test_the_cli_wiring_with_json_output(server_url, site_token, study, engine):
    result = CliRunner().invoke(main, [
        "submit", str(study / "a"), str(study / "b.txt"), "--trial", "nct01234567",
        "--site", SITE, "--kind", "report", "--dataset", "ADSL", "--json",
        "--server", server_url, "--token", site_token])
    assert result.exit_code == 0, result.output
    listed = json.loads(result.stdout)
    rows = registrations(engine)
    paths = [os.path.join(str(study / "a"), "deep", "x.xpt"),
             os.path.join(str(study / "a"), "z.txt"), str(study / "b.txt")]
    assert [(item["path"], item["id"], item["sha256"], item["status"], item["receipt"])
            for item in listed] == [(path, r.id, r.sha256, "pending", None)
                                    for path, r in zip(paths, rows, strict=True)]
    assert {(r.trial, r.kind, r.dataset) for r in rows} == {(TRIAL, "report", "ADSL")}
    assert [r.filename for r in rows] == ["deep/x.xpt", "z.txt", "b.txt"]


def test_a_correction_from_the_cli_carries_its_reason(server_url, site_token, study, engine):
    first = study / "b.txt"
    assert client.run(paths=[str(first)], **options(server_url, site_token)) == 0
    (earlier,) = registrations(engine)
    write(first, b"b, corrected")
    result = CliRunner().invoke(main, [
        "submit", str(first), "--trial", TRIAL, "--site", SITE, "--supersedes", earlier.id,
        "--reason", "typo in visit 2", "--server", server_url, "--token", site_token])
    assert result.exit_code == 0, result.output
    _, fixed = registrations(engine)
    assert (fixed.supersedes, fixed.reason, fixed.sha256) == (
        earlier.id, "typo in visit 2", sha256_of(first))


def test_files_made_after_the_beacon_carry_its_not_before(server_url, site_token, study,
                                                          engine, capsys):
    beacon = CliRunner().invoke(main, ["beacon", "--derive", "randomisation",
                                       "--server", server_url])
    not_before = json.loads(beacon.output)["notBefore"]
    result = CliRunner().invoke(main, [
        "submit", str(study / "b.txt"), "--trial", TRIAL, "--site", SITE,
        "--kind", "randomisation-list", "--not-before", json.dumps(not_before),
        "--server", server_url, "--token", site_token])
    assert result.exit_code == 0, result.output
    (row,) = registrations(engine)
    assert row.record()["notBefore"] == not_before
    assert client.run(paths=[str(study / "b.txt")], not_before='{"chainId": 0}',
                      **options(server_url, site_token)) == 1
    assert "notBefore.blockNumber: is required" in capsys.readouterr().err
    assert client.run(paths=[str(study / "b.txt")], not_before="{",
                      **options(server_url, site_token)) == 1
    assert "--not-before must be JSON" in capsys.readouterr().err
    assert len(registrations(engine)) == 1


def test_a_registration_corrected_already_is_refused_before_hashing(
        server_url, site_token, study, engine, capsys, monkeypatch):
    first = study / "b.txt"
    assert client.run(paths=[str(first)], **options(server_url, site_token)) == 0
    (earlier,) = registrations(engine)
    assert client.run(paths=[str(first)], reason="one",
                      **options(server_url, site_token, supersedes=earlier.id)) == 0
    _, fix = registrations(engine)
    capsys.readouterr()
    hashed = []
    monkeypatch.setattr(client, "hash_entries", lambda entries, bar: hashed.append(entries))
    assert client.run(paths=[str(first)], reason="two",
                      **options(server_url, site_token, supersedes=earlier.id.upper())) == 1
    err = capsys.readouterr().err
    assert f"already superseded by {fix.id}" in err and f"--supersedes {fix.id}" in err
    assert client.run(paths=[str(study / "a")], reason="two files",
                      **options(server_url, site_token, supersedes=fix.id)) == 1
    assert "corrects one registration with one file, not 2" in capsys.readouterr().err
    assert client.run(paths=[str(first)], reason="unknown",
                      **options(server_url, site_token, supersedes=str(uuid.uuid4()))) == 1
    assert "the server has no registration" in capsys.readouterr().err
    assert hashed == [] and len(registrations(engine)) == 2


def test_a_reason_without_supersedes_fails_before_sending(study, capsys):
    code = client.run(paths=[str(study / "b.txt")], reason="why",
                      **options("http://127.0.0.1:9", "unused"))
    assert code == 1
    err = capsys.readouterr().err
    assert err.count("--reason is for a correction") == 1 and "cannot reach" not in err


def test_a_server_error_names_the_file_and_fails(server_url, site_token, study, capsys):
    code = client.run(paths=[str(study / "a")],
                      **options(server_url, site_token, trial="NCT09999999"))
    assert code == 1
    captured = capsys.readouterr()
    assert captured.err == ("error: server refused the registration (validation_error): "
                            f"{study / 'a' / 'deep' / 'x.xpt'}: trial: "
                            "unknown trial NCT09999999\n")
    assert captured.out == ""


def test_a_bad_token_is_refused_clearly(server_url, site_token, study, capsys):
    code = client.run(paths=[str(study / "b.txt")], **options(server_url, "tn_site_wrong"))
    assert code == 1
    assert "unauthorized" in capsys.readouterr().err


class LoseFirstBulkAnswer:
    """In front of the real app: the first bulk registration is processed, but its answer
    is replaced by a 503, as if a proxy lost it."""

    def __init__(self, app):
        self.app = app
        self.keys: list[str] = []

    def __call__(self, environ, start_response):
        if not environ["PATH_INFO"].endswith("/submissions/bulk"):
            return self.app(environ, start_response)
        self.keys.append(environ.get("HTTP_IDEMPOTENCY_KEY"))
        if len(self.keys) > 1:
            return self.app(environ, start_response)
        answer = self.app(environ, lambda *args: (lambda data: None))
        b"".join(answer)
        getattr(answer, "close", lambda: None)()
        start_response("503 Service Unavailable", [("Content-Type", "text/plain"),
                                                   ("Retry-After", "0")])
        return [b"answer lost"]


def test_a_lost_answer_is_retried_with_the_same_key_and_registers_once(
        app, serve, site_token, study, engine, capsys):
    proxy = LoseFirstBulkAnswer(app)
    url = serve(proxy)
    assert client.run(paths=[str(study)], **options(url, site_token)) == 0
    assert len(proxy.keys) == 2 and proxy.keys[0] == proxy.keys[1]
    rows = registrations(engine)
    assert len(rows) == 5
    assert {r.id for r in rows} <= set(capsys.readouterr().out.split())


@pytest.mark.slow
def test_more_than_10000_files_go_in_several_bulk_requests(server_url, site_token,
                                                           tmp_path, engine):
    folder = tmp_path / "dicom"
    folder.mkdir()
    for i in range(10_001):
        (folder / f"{i:05}.dcm").write_bytes(str(i).encode())
    result = CliRunner().invoke(main, ["submit", str(folder), "--trial", TRIAL, "--site",
                                       SITE, "--json", "--server", server_url, "--token",
                                       site_token])
    assert result.exit_code == 0, result.output
    listed = json.loads(result.stdout)
    rows = registrations(engine)
    assert [item["id"] for item in listed] == [r.id for r in rows]
    assert len({r.id for r in rows}) == 10_001
    assert rows[-1].filename == "10000.dcm"
    assert rows[-1].sha256 == hashlib.sha256(b"10000").hexdigest()


def test_wait_saves_each_receipt_under_its_download_name(app, anvil, server_url,
                                                         site_token, study, tmp_path,
                                                         engine, capsys):
    out = tmp_path / "receipts" / "nested"
    sealer = in_background(confirm_everything, app, anvil, 5)
    code = client.run(paths=[str(study)], **options(server_url, site_token, wait=True,
                                                    out=str(out)))
    sealer.join_and_check()
    assert code == 0
    rows = registrations(engine)
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(receipt_filename(TRIAL, "Study 1 (v2)", r.id) for r in rows)
    assert all(name.startswith("NCT01234567_Study_1__v2__") for name in names)
    for row in rows:
        saved = json.loads((out / receipt_filename(TRIAL, row.dataset, row.id)).read_text())
        record = saved["trialnotary"]["record"]
        assert record["id"] == row.id
        assert record["sha256"] == sha256_of(study.joinpath(*row.filename.split("/")))
    confirmed = [line for line in capsys.readouterr().out.splitlines()
                 if line.startswith("confirmed")]
    assert len(confirmed) == 5


def test_wait_with_json_lists_the_saved_receipts(app, anvil, server_url, site_token, study,
                                                 tmp_path, capsys):
    sealer = in_background(confirm_everything, app, anvil, 1)
    code = client.run(paths=[str(study / "a-b.txt")],
                      **options(server_url, site_token, as_json=True, out=str(tmp_path)))
    sealer.join_and_check()
    assert code == 0
    [item] = json.loads(capsys.readouterr().out)
    assert item["status"] == "confirmed"
    assert item["receipt"] == str(tmp_path / receipt_filename(TRIAL, "a-b.txt", item["id"]))
    saved = json.loads(Path(item["receipt"]).read_text())
    assert saved["trialnotary"]["record"]["sha256"] == item["sha256"]


def interrupt_once_registered(engine, after: float = 1.5) -> None:
    """Ctrl-C for the main thread, once it is past registering and into waiting."""
    deadline = time.monotonic() + 30
    while not registrations(engine):
        assert time.monotonic() < deadline, "the registration never arrived"
        time.sleep(0.05)
    time.sleep(after)
    os.kill(os.getpid(), signal.SIGINT)


def test_ctrl_c_while_waiting_says_what_is_still_pending(server_url, site_token, study,
                                                         engine, capsys):
    interrupter = in_background(interrupt_once_registered, engine)
    code = client.run(paths=[str(study / "b.txt")],
                      **options(server_url, site_token, wait=True))
    interrupter.join_and_check()
    assert code == 130
    [row] = registrations(engine)
    err = capsys.readouterr().err
    assert "1 registration(s) not confirmed yet" in err
    assert row.id in err and "trialnotary receipt" in err


def test_ctrl_c_stops_the_wait_even_when_started_with_sigint_ignored(server_url, site_token,
                                                                    study, engine):
    """A background job of a script inherits SIGINT ignored; `kill -INT` still stops it."""
    process = subprocess.Popen(
        [Path(sys.executable).parent / "trialnotary", "submit", str(study / "b.txt"),
         "--trial", TRIAL, "--site", SITE, "--wait", "--server", server_url,
         "--token", site_token],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    try:
        deadline = time.monotonic() + 30
        while not registrations(engine):
            assert time.monotonic() < deadline and process.poll() is None
            time.sleep(0.05)
        time.sleep(1.5)
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=30)
    finally:
        process.kill()
    assert process.returncode == 130, err
    assert "1 registration(s) not confirmed yet" in err


def test_receipt_fetches_a_confirmed_receipt_and_explains_the_other_answers(
        app, anvil, server_url, site_token, study, tmp_path, capsys, monkeypatch):
    assert client.run(paths=[str(study / "b.txt")],
                      **options(server_url, site_token, as_json=True)) == 0
    [item] = json.loads(capsys.readouterr().out)

    assert receipts.fetch_receipt(server_url, item["id"], None) == 3
    assert "not confirmed yet, try again later" in capsys.readouterr().err
    assert receipts.fetch_receipt(server_url, str(uuid.uuid4()), None) == 1
    assert "error: no registration" in capsys.readouterr().err

    confirm_everything(app, anvil, 1)
    target = tmp_path / "mine.json"
    result = CliRunner().invoke(main, ["receipt", item["id"], "-o", str(target),
                                       "--server", server_url])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == str(target)
    assert json.loads(target.read_text())["trialnotary"]["record"]["sha256"] == item["sha256"]

    monkeypatch.chdir(tmp_path)
    assert receipts.fetch_receipt(server_url, item["id"], None) == 0
    assert capsys.readouterr().out.encode() == target.read_bytes()  # stdout, as served
    assert not (tmp_path / receipt_filename(TRIAL, "b.txt", item["id"])).exists()

    result = CliRunner().invoke(main, ["receipt", item["id"], "--server", server_url])
    assert result.exit_code == 0 and result.stdout_bytes == target.read_bytes()
    json.loads(result.stdout_bytes)  # `trialnotary receipt ID > r.json` is the receipt

    existing = tmp_path / "saved"
    existing.mkdir()
    for folder, given in ((existing, str(existing)), (tmp_path / "new" / "dir", "new/dir/")):
        result = CliRunner().invoke(main, ["receipt", item["id"], "-o", given,
                                           "--server", server_url])
        assert result.exit_code == 0, result.output
        saved = folder / receipt_filename(TRIAL, "b.txt", item["id"])
        assert result.stdout.strip() == str(Path(given) / saved.name)
        assert saved.read_bytes() == target.read_bytes()


def test_an_unreachable_server_is_reported_after_retries(study, capsys, monkeypatch):
    monkeypatch.setattr(api, "ATTEMPTS", 2)
    code = client.run(paths=[str(study / "b.txt")],
                      **options("http://127.0.0.1:9", "token"))
    assert code == 1
    assert "cannot reach http://127.0.0.1:9/api/v1" in capsys.readouterr().err

