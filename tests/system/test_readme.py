"""The README's examples, run as written against a real server."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

from sqlmodel import Session

from trialnotary.people import sites

README = Path(__file__).resolve().parents[2] / "README.md"


def shell_example(containing: str) -> str:
    """The README's ``sh`` code block that holds ``containing``."""
    blocks = re.findall(r"```sh\n(.*?)```", README.read_text(), flags=re.DOTALL)
    [block] = [block for block in blocks if containing in block]
    return block


def test_the_curl_example_registers_the_files_real_size(engine, live_server, tmp_path):
    with Session(engine) as session:
        sites.add_trial(session, "NCT01234567")
        sites.add_site(session, "NCT01234567", "DEMO-SITE")
        token = sites.create_token(session, "DEMO-SITE")
        session.commit()
    (tmp_path / "adsl.xpt").write_bytes(b"SDTM transport file\n" * 321)
    example = shell_example("/api/v1/submissions").replace("http://127.0.0.1:5000", live_server)
    done = subprocess.run(["bash", "-c", example], cwd=tmp_path, capture_output=True, text=True,
                          timeout=30, env={**os.environ, "TRIALNOTARY_TOKEN": token})
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["record"]["sizeBytes"] == (tmp_path / "adsl.xpt").stat().st_size == 20 * 321
