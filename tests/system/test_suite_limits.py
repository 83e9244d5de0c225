"""The test suite itself: no test can hang it."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_test_has_a_time_limit(pytestconfig):
    assert 0 < float(pytestconfig.getini("timeout")) <= 300
    assert pytestconfig.getini("timeout_method") == "signal"


def test_a_hanging_test_fails_at_its_limit_and_the_run_goes_on(tmp_path):
    (tmp_path / "test_hangs.py").write_text(
        "import threading\n\n"
        "def test_waits_forever():\n    threading.Event().wait()\n\n"
        "def test_after_it():\n    assert True\n")
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-c",
         str(ROOT / "pyproject.toml"), "--rootdir", str(tmp_path), "-o", "timeout=2",
         str(tmp_path / "test_hangs.py")],
        capture_output=True, text=True, timeout=60)
    assert "1 failed, 1 passed" in run.stdout, run.stdout + run.stderr
    assert "Timeout (>2.0s) from pytest-timeout" in run.stdout
