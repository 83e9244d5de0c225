"""What a reviewer installs: `pip install trialnotary` in a fresh virtualenv, counted.

    python bench/reviewer_install.py

Builds this tree's wheel, installs it into a new virtualenv made without pip (so that its
site-packages holds only what the install brought, not pip itself) from the package index
pip is configured with, and counts the distributions installed and the size of
site-packages, bytecode included, as pip leaves it. The baseline is the same install of
'trialnotary[server]': the server, which every reviewer installed before it became an
extra. Floor: at most 16 distributions and 60 MB (10^6 bytes).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import ROOT, Figure, report  # noqa: E402

MOST_DISTRIBUTIONS = 16
MOST_MEGABYTES = 60


def build_wheel(source: Path, folder: Path) -> Path:
    """The wheel of the tree at ``source`` (its browser libraries fetched if missing)."""
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                    "--no-build-isolation", "--wheel-dir", str(folder), str(source)],
                   check=True, capture_output=True)
    [wheel] = folder.glob("trialnotary-*.whl")
    return wheel


def environment_of_its_own() -> dict[str, str]:
    """This process's environment without what would lead another interpreter to our
    source tree or virtualenv."""
    return {key: value for key, value in os.environ.items()
            if key not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}


def install_in_new_venv(requirement: str, venv: Path) -> Path:
    """A new virtualenv holding ``requirement`` and what it depends on, from the package
    index; returns its python."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install",
                    "--quiet", requirement], check=True, capture_output=True,
                   env=environment_of_its_own())
    return python


def ask(python: Path, code: str):
    """What ``code`` prints as JSON, run by ``python`` in its own environment."""
    done = subprocess.run([str(python), "-c", code], check=True, capture_output=True,
                          text=True, env=environment_of_its_own(), cwd=python.parent)
    return json.loads(done.stdout)


def installed_distributions(python: Path) -> list[str]:
    return ask(python, "import importlib.metadata as m, json; print(json.dumps(sorted("
                       "d.metadata['Name'] for d in m.distributions())))")


def site_packages_bytes(python: Path) -> int:
    folder = Path(ask(python, "import json, sysconfig; "
                              "print(json.dumps(sysconfig.get_path('purelib')))"))
    return sum(path.stat().st_size for path in folder.rglob("*")
               if path.is_file() and not path.is_symlink())


def measure(requirement: str, venv: Path) -> tuple[list[str], float]:
    """The distributions ``requirement`` installs, and site-packages in MB."""
    python = install_in_new_venv(requirement, venv)
    return installed_distributions(python), site_packages_bytes(python) / 1e6


def figures() -> list[Figure]:
    with tempfile.TemporaryDirectory() as folder:
        wheel = build_wheel(ROOT, Path(folder) / "dist")
        base, base_mb = measure(str(wheel), Path(folder) / "base")
        server, server_mb = measure(f"{wheel}[server]", Path(folder) / "server")
    print(f"pip install trialnotary: {len(base)} distributions, {base_mb:.1f} MB: "
          + ", ".join(base))
    print(f"pip install 'trialnotary[server]': {len(server)} distributions, "
          f"{server_mb:.1f} MB")
    return [
        Figure("pip install trialnotary (reviewer): distributions", len(base), "",
               f"[server]: {len(server)}", f"≤ {MOST_DISTRIBUTIONS}",
               len(base) <= MOST_DISTRIBUTIONS, len(base) / len(server)),
        Figure("pip install trialnotary (reviewer): site-packages", base_mb, "MB",
               f"[server]: {server_mb:.0f} MB", f"≤ {MOST_MEGABYTES} MB",
               base_mb <= MOST_MEGABYTES, base_mb / server_mb),
    ]


if __name__ == "__main__":
    sys.exit(report(figures()))
