"""`pip install .` must carry the templates and the migrations inside the package."""

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
    assert "trialnotary/templates/index.html" in names
    assert "trialnotary/migrations/env.py" in names
    assert "trialnotary/migrations/script.py.mako" in names
    assert "trialnotary/migrations/versions/0001_initial_schema.py" in names
    [entry_points] = [n for n in names if n.endswith("entry_points.txt")]
    entry_points_text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "trialnotary = trialnotary.cli:main" in entry_points_text
