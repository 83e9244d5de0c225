"""`pip install .` must carry the templates, static files and migrations inside the package,
and the browser libraries its pages load, even when built from a clean clone; `pip install
trialnotary` alone must verify receipts, and stay small (docs/cli.md)."""

import os
import re
import shutil
import subprocess
import sys
import sysconfig
import time
import zipfile
from pathlib import Path
from urllib.parse import urljoin

import pytest
import requests

from bench.reviewer_install import (
    MOST_DISTRIBUTIONS,
    MOST_MEGABYTES,
    build_wheel,
    environment_of_its_own,
    install_in_new_venv,
    installed_distributions,
    site_packages_bytes,
)
from tests.conftest import free_port
from tests.proof.anchored import NOTARY, make_batch, write
from tests.utils import PASSWORD, add_person
from trialnotary import db
from trialnotary.cli.server_extra import INSTALL_THE_SERVER
from trialnotary.people import sites

ROOT = Path(__file__).resolve().parents[2]


def test_the_wheel_holds_templates_migrations_and_the_console_script(tmp_path):
    wheel = build_wheel(ROOT, tmp_path)
    names = set(zipfile.ZipFile(wheel).namelist())
    templates = {p.relative_to(ROOT / "templates").as_posix()
                 for p in (ROOT / "templates").rglob("*.html")}
    assert {f"trialnotary/templates/{t}" for t in templates} <= names
    assert "trialnotary/templates/admin/audit.html" in names
    static = {p.relative_to(ROOT / "trialnotary").as_posix()
              for p in (ROOT / "trialnotary" / "web" / "static").rglob("*")
              if p.is_file() and not p.name.startswith(".")}
    assert {f"trialnotary/{s}" for s in static} <= names
    assert {"trialnotary/web/static/vendor/hash-wasm-sha256.umd.min.js",
            "trialnotary/web/static/vendor/noble-hashes/sha3.js",
            "trialnotary/web/static/vendor/verify-page.bundle.js"} <= names
    assert "trialnotary/proof/facts.json" in names  # the verifiers' facts (docs/receipt.md)
    modules = {p.relative_to(ROOT).as_posix() for p in (ROOT / "trialnotary").rglob("*.py")}
    assert modules - names == set()  # every subpackage is listed in setup.cfg
    assert "trialnotary/migrations/env.py" in names
    assert "trialnotary/migrations/script.py.mako" in names
    assert "trialnotary/migrations/versions/0002_people_and_the_audit_trail.py" in names
    [entry_points] = [n for n in names if n.endswith("entry_points.txt")]
    entry_points_text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "trialnotary = trialnotary.cli:main" in entry_points_text
    [metadata] = [n for n in names if n.endswith(".dist-info/METADATA")]
    requires = [line.removeprefix("Requires-Dist: ") for line in
                zipfile.ZipFile(wheel).read(metadata).decode().splitlines()
                if line.startswith("Requires-Dist: ")]
    base = [line for line in requires if "extra ==" not in line]
    assert "rfc8785>=0.1.4" in base and not [line for line in base if "flask" in line]
    assert 'flask>=3.0; extra == "server"' in requires


def clean_tree(destination: Path) -> Path:
    """This working tree as a fresh clone of it would be: the files git tracks or would
    track, without the ignored ones (node_modules/, the copied browser libraries, .venv/)."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others",
                             "--exclude-standard"], cwd=ROOT, check=True,
                            capture_output=True).stdout
    for name in filter(None, listed.decode().split("\0")):
        source = ROOT / name
        if source.is_file():  # a tracked file deleted in the working tree is not copied
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination / name)
    return destination


@pytest.fixture(scope="module")
def clean_clone_wheel(tmp_path_factory) -> Path:
    """The wheel of this tree as a fresh clone of it would be: without node_modules/ and the
    copied browser libraries (the build fetches them)."""
    folder = tmp_path_factory.mktemp("clean-clone")
    tree = clean_tree(folder / "clone")
    assert not (tree / "node_modules").exists()
    assert not (tree / "trialnotary/web/static/vendor").exists()
    return build_wheel(tree, folder / "dist")


def install_with_the_server(wheel: Path, venv: Path) -> Path:
    """A virtualenv holding this wheel with its ``server`` extra; the dependencies are
    borrowed from the running one's site-packages (listed in a .pth, whose own .pth files,
    such as the editable install of the source tree, are not read), and pip checks that
    they hold every one the extra names. Returns its python."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    own = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                         check=True, capture_output=True, text=True).stdout.strip()
    borrowed = {sysconfig.get_path("purelib"), sysconfig.get_path("platlib")}
    Path(own, "borrowed-dependencies.pth").write_text("\n".join(sorted(borrowed)) + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet",
                    "--no-index", f"{wheel}[server]"], check=True, capture_output=True,
                   env=environment_of_its_own())
    return python


# `import … from "./x.js"`, `import("./x.js")`, `new URL("./x.js", import.meta.url)`: paths
# only, as a page without an import map loads them (a bare "@scope/x.js" is what a library's
# doc comments show, and the page's console would report it if it were loaded).
SCRIPT_REFERENCE = re.compile(
    r"""(?:\bfrom\s+|\bimport\s*\(\s*|\bnew URL\(\s*)["']((?:\.\.?)?/[^"']+\.js)["']""")


def script_references(url: str, seen: set[str]) -> None:
    """Fetch a script and, through its imports and `new URL(…, import.meta.url)`, every
    script it loads; each must answer 200 with JavaScript."""
    if url in seen:
        return
    seen.add(url)
    response = requests.get(url, timeout=10)
    assert response.status_code == 200, url
    assert "javascript" in response.headers["Content-Type"] and response.text.strip(), url
    for reference in SCRIPT_REFERENCE.findall(response.text):
        script_references(urljoin(url, reference), seen)


@pytest.mark.slow
def test_a_wheel_built_from_a_clean_clone_serves_pages_whose_scripts_all_load(
        clean_clone_wheel, tmp_path, page):
    python = install_with_the_server(clean_clone_wheel, tmp_path / "venv")
    home = tmp_path / "home"
    home.mkdir()
    imported = subprocess.run([python, "-c", "import trialnotary; print(trialnotary.__file__)"],
                              cwd=home, check=True, capture_output=True, text=True,
                              env=environment_of_its_own()).stdout
    assert imported.startswith(str(tmp_path / "venv"))  # the wheel, not the source tree

    url = f"sqlite:///{home / 'instance' / 'trialnotary.sqlite3'}"
    db.upgrade(url)
    engine = db.make_engine(url)
    with db.write_session(engine) as session:
        sites.add_trial(session, "NCT01234567")
        sites.add_site(session, "NCT01234567", "SITE-01")
        session.commit()
    add_person(engine, "coordinator@example.org", "coordinator", sites=["SITE-01"])
    engine.dispose()
    env = {k: v for k, v in environment_of_its_own().items()
           if not k.startswith("TRIALNOTARY_")}
    port = free_port()
    server = subprocess.Popen([python.parent / "trialnotary", "serve", "--no-scheduler",
                               "--port", str(port)], cwd=home, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(base, server)
        problems: list[str] = []
        page.on("console", lambda m: m.type == "error" and not m.location["url"].endswith(
            "/favicon.ico") and problems.append(f"{m.text} {m.location['url']}"))
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.on("response", lambda r: r.status >= 400 and problems.append(f"{r.status} {r.url}"))
        page.goto(f"{base}/login")
        page.get_by_label("E-mail address").fill("coordinator@example.org")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(f"{base}/")
        seen: set[str] = set()
        for path in ("/verify", "/register"):
            page.goto(base + path, wait_until="networkidle")
            sources = page.eval_on_selector_all("script[src]", "all => all.map(s => s.src)")
            assert any(source.endswith(".js") for source in sources), path
            for source in sources:
                script_references(source, seen)
        assert problems == []
    finally:
        server.terminate()
        server.wait(15)
    vendored = {url.split("/static/vendor/", 1)[1] for url in seen if "/static/vendor/" in url}
    assert vendored == {"hash-wasm-sha256.umd.min.js", "canonicalize.js",
                        # the chain evidence's checks (static/js/evm.js)
                        "noble-secp256k1.js", "noble-hashes/sha3.js", "noble-hashes/_u64.js",
                        "noble-hashes/utils.js"}


@pytest.mark.slow
def test_the_base_install_verifies_a_receipt_alone_and_stays_small(clean_clone_wheel,
                                                                  tmp_path, anvil):
    """`pip install trialnotary` from the package index into a new virtualenv: the verifier
    and the client commands, none of the server's packages, within the limits."""
    python = install_in_new_venv(str(clean_clone_wheel), tmp_path / "venv")
    installed = installed_distributions(python)
    assert len(installed) <= MOST_DISTRIBUTIONS, installed
    assert {"trialnotary", "requests", "rfc8785", "click", "rfc3161-client"} <= set(installed)
    assert not {"Flask", "SQLAlchemy", "sqlmodel", "web3", "pydantic", "gunicorn"} & set(
        installed) and not [name for name in installed if name.startswith("eth")]
    assert site_packages_bytes(python) <= MOST_MEGABYTES * 1e6

    batch = make_batch(anvil, tmp_path / "batch", count=3)
    command = python.with_name("trialnotary")

    def run(*arguments) -> subprocess.CompletedProcess:
        return subprocess.run([command, *map(str, arguments)], cwd=tmp_path,
                              capture_output=True, text=True, timeout=120,
                              env={**environment_of_its_own(), "PYTHONIOENCODING": "utf-8"})

    done = run("verify", write(tmp_path, batch.receipts[0]), "--file", batch.files[0],
               "--rpc", anvil.url, "--expect-sender", NOTARY)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines()[-1].startswith("PASS")
    for client in ("submit", "receipt"):
        assert run(client, "--help").returncode == 0
    refused = run("serve")
    assert refused.returncode == 1 and refused.stdout == ""
    [line] = refused.stderr.splitlines()
    assert line.startswith("Error: `trialnotary serve` runs the notary")
    assert line.endswith(INSTALL_THE_SERVER)


def wait_until_healthy(base: str, server: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and server.poll() is None:
        try:
            if requests.get(f"{base}/api/v1/healthz", timeout=1).ok:
                return
        except requests.ConnectionError:
            time.sleep(0.2)
    pytest.fail("the installed package's server did not start")


def make_dry_run(target: str, **environment: str) -> list[str]:
    """The commands `make TARGET` would run from scratch (`-n -B`: printed, not run), as if
    typed in a shell (not from within the `make test` that may be running this)."""
    outer = ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES", "PORT")
    env = {k: v for k, v in os.environ.items() if k not in outer}
    run = subprocess.run(["make", "--no-print-directory", "-n", "-B", target], cwd=ROOT,
                         capture_output=True, text=True, check=True,
                         env={**env, **environment})
    return run.stdout.splitlines()


def test_make_run_installs_what_running_needs_and_make_test_adds_the_test_tools():
    def installs(commands):
        return [c.split(" -e ", 1)[1] for c in commands if "pip install" in c and " -e " in c]

    run = make_dry_run("run")
    assert installs(run) == ["'.[server]'"]
    assert run[-1].endswith("trialnotary up --port 5000")
    assert installs(make_dry_run("test")) == ["'.[server]'", "'.[server,test]'"]
    assert make_dry_run("run", PORT="5001")[-1].endswith("trialnotary up --port 5001")


def test_package_json_states_the_node_version_and_this_node_meets_it():
    import json

    wanted = json.loads((ROOT / "package.json").read_text())["engines"]["node"]
    minimum = int(re.fullmatch(r">=(\d+)(?:\.\d+)*", wanted).group(1))
    node = subprocess.run(["node", "--version"], capture_output=True, text=True, check=True)
    assert int(node.stdout.strip().lstrip("v").split(".")[0]) >= minimum
