"""`pip install .` must carry the templates, static files and migrations inside the package."""

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_wheel_holds_templates_migrations_and_the_console_script(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                    "--no-build-isolation", "--wheel-dir", str(tmp_path), str(ROOT)],
                   check=True, capture_output=True)
    [wheel] = tmp_path.glob("trialnotary-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    templates = {p.relative_to(ROOT / "templates").as_posix()
                 for p in (ROOT / "templates").rglob("*.html")}
    assert {f"trialnotary/templates/{t}" for t in templates} <= names
    assert "trialnotary/templates/admin/audit.html" in names
    static = {p.relative_to(ROOT / "trialnotary").as_posix()
              for p in (ROOT / "trialnotary" / "static").rglob("*")
              if p.is_file() and not p.name.startswith(".")}
    assert {f"trialnotary/{s}" for s in static} <= names
    assert "trialnotary/static/vendor/hash-wasm-sha256.umd.min.js" in names
    assert "trialnotary/migrations/env.py" in names
    assert "trialnotary/migrations/script.py.mako" in names
    assert "trialnotary/migrations/versions/0002_people_and_the_audit_trail.py" in names
    [entry_points] = [n for n in names if n.endswith("entry_points.txt")]
    entry_points_text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "trialnotary = trialnotary.cli:main" in entry_points_text
