"""The browser libraries the pages load, from npm into the package's static folder, and the
verify page bundled into one module for the self-contained verifier page.

They are third-party code, so they are not committed: ``trialnotary/web/static/vendor/`` is
filled from ``node_modules/`` (as pinned by package-lock.json) by the Makefile
(``python build_vendor.py``, after ``npm ci``) and by the package build (setup.py calls
:func:`ensure`), so that a wheel built from a clean clone carries them too. npm is used at
build time only, never when the notary runs.

The bundle (esbuild, from npm) is the verify page's script with every module it imports, our
own and the vendored ones, in one file: the self-contained verifier page embeds it, so that
the page works opened from disk, with no server (docs/verification.md).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

# node_modules/<source> -> trialnotary/web/static/vendor/<name>: the one list of vendored files.
VENDORED = {
    "hash-wasm/dist/sha256.umd.min.js": "hash-wasm-sha256.umd.min.js",
    "hash-wasm/LICENSE": "hash-wasm.LICENSE",
    "canonicalize/lib/canonicalize.js": "canonicalize.js",
    "canonicalize/LICENSE": "canonicalize.LICENSE",
    # The chain evidence's checks: secp256k1 key recovery, and Keccak-256 (sha3.js with the
    # two modules it imports, kept side by side so that its relative imports resolve).
    "@noble/secp256k1/index.js": "noble-secp256k1.js",
    "@noble/secp256k1/LICENSE": "noble-secp256k1.LICENSE",
    "@noble/hashes/sha3.js": "noble-hashes/sha3.js",
    "@noble/hashes/_u64.js": "noble-hashes/_u64.js",
    "@noble/hashes/utils.js": "noble-hashes/utils.js",
    "@noble/hashes/LICENSE": "noble-hashes/LICENSE",
}
TARGET = Path("trialnotary", "web", "static", "vendor")
# Our entry module -> its bundle in TARGET.
BUNDLES = {Path("trialnotary", "web", "static", "js", "verify-page.js"): "verify-page.bundle.js"}
ESBUILD = Path("esbuild", "bin", "esbuild")
# The browser libraries are the package.json "dependencies"; anvil, a devDependency, is
# not needed to build the package.
NPM_CI = ("ci", "--omit=dev", "--ignore-scripts", "--prefer-offline", "--no-audit",
          "--no-fund")


class VendorError(RuntimeError):
    """The browser libraries could not be had; the message says what to do."""


def packages() -> list[str]:
    """The npm packages the vendored files come from (a scoped name keeps its scope)."""
    return sorted({"/".join(source.split("/")[:2 if source.startswith("@") else 1])
                   for source in VENDORED})


def missing(root: Path) -> list[str]:
    """The vendored files that ``root``'s package lacks."""
    return [name for name in [*VENDORED.values(), *BUNDLES.values()]
            if not (root / TARGET / name).is_file()]


def copy(root: Path, node_modules: Path) -> None:
    target = root / TARGET
    for source, name in VENDORED.items():
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(node_modules / source, target / name)


def bundle(root: Path, node_modules: Path) -> None:
    """Bundle each entry module with all it imports into one ES module (esbuild)."""
    for entry, name in BUNDLES.items():
        built = subprocess.run(
            [str(node_modules / ESBUILD), str(root / entry), "--bundle", "--format=esm",
             "--target=es2022", "--legal-comments=inline", "--log-level=error",
             f"--outfile={root / TARGET / name}"], capture_output=True, text=True)
        if built.returncode != 0:
            raise VendorError(f"esbuild could not bundle {entry}:\n{built.stderr.strip()}")


def fill(root: Path, node_modules: Path) -> None:
    copy(root, node_modules)
    bundle(root, node_modules)


def _has_sources(node_modules: Path) -> bool:
    return all((node_modules / source).is_file() for source in [*VENDORED, ESBUILD])


def ensure(root: Path) -> None:
    """Fill ``root``'s vendor folder if it lacks a file: from ``root/node_modules`` when
    that has them, else from a fresh ``npm ci`` in a folder of its own (so that a
    developer's node_modules/ is never changed)."""
    if _has_sources(root / "node_modules"):
        fill(root, root / "node_modules")  # the bundle again too: our modules may have changed
        return
    if not missing(root):
        return
    npm = shutil.which("npm")
    if npm is None:
        raise VendorError(
            f"building trialnotary needs its browser libraries ({', '.join(packages())}) "
            "from npm, and npm is not installed: install Node.js (see package.json "
            "\"engines\") and npm, then build again")
    with tempfile.TemporaryDirectory(prefix="trialnotary-npm-") as folder:
        for name in ("package.json", "package-lock.json"):
            shutil.copyfile(root / name, Path(folder, name))
        installed = subprocess.run([npm, *NPM_CI], cwd=folder, capture_output=True,
                                   text=True)
        if installed.returncode != 0:
            raise VendorError("`npm ci` could not install the browser libraries:\n"
                              + (installed.stderr or installed.stdout).strip())
        fill(root, Path(folder, "node_modules"))


if __name__ == "__main__":
    project = Path(__file__).resolve().parent
    if not _has_sources(project / "node_modules"):
        sys.exit("node_modules/ lacks the browser libraries: run `npm ci` first")
    try:
        fill(project, project / "node_modules")
    except VendorError as exc:
        sys.exit(str(exc))
