"""The architecture, as import rules: what each subpackage may import.

Read from the source (every import statement, at any depth), so a new module or a local
import cannot slip past.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "trialnotary"
SUBPACKAGES = ("proof", "notary", "people", "web", "cli")


def modules() -> dict[str, Path]:
    """``trialnotary.x.y`` → its file, for every module of the package."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def imports_of(path: Path, name: str) -> set[str]:
    """Every module ``path`` imports, absolute (relative imports resolved)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found |= {f"{base}.{alias.name}" for alias in node.names}
    return found


def layer(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "trialnotary" or len(parts) < 2:
        return None
    return parts[1] if parts[1] in SUBPACKAGES else "shared"


def ours(imported: set[str]) -> set[str]:
    """The imported names that are modules or subpackages of trialnotary."""
    known = modules()
    return {name for name in imported if name in known}


ALL = modules()


@pytest.mark.parametrize("name", sorted(n for n in ALL if layer(n) == "proof"))
def test_proof_imports_nothing_else_of_the_package(name):
    """It is what a reviewer installs: it stands alone."""
    outside = {m for m in ours(imports_of(ALL[name], name)) if layer(m) not in ("proof", None)}
    assert outside == set()


#: Ethereum packages of the server's (web3.py and its family, py-trie): the verifier does
#: its own RLP, tries, transactions and headers on pycryptodome and coincurve.
SERVER_ETHEREUM = ("web3", "eth_account", "eth_abi", "eth_hash", "eth_keys", "eth_keyfile",
                   "eth_rlp", "eth_typing", "eth_utils", "hexbytes", "rlp", "trie")


@pytest.mark.parametrize("name", sorted(n for n in ALL if layer(n) == "proof"))
def test_proof_imports_no_ethereum_package_of_the_server(name):
    found = {m for m in imports_of(ALL[name], name)
             if m.split(".")[0] in SERVER_ETHEREUM or m.startswith("eth_")}
    assert found == set()


@pytest.mark.parametrize("name", sorted(ALL))
def test_only_the_web_imports_flask(name):
    flask = {m for m in imports_of(ALL[name], name)
             if m.split(".")[0] in ("flask", "flask_wtf", "werkzeug")}
    assert layer(name) == "web" or flask == set()


@pytest.mark.parametrize("name", sorted(n for n in ALL if layer(n) != "cli"))
def test_nothing_imports_the_cli(name):
    assert {m for m in ours(imports_of(ALL[name], name)) if layer(m) == "cli"} == set()


@pytest.mark.parametrize("name", sorted(n for n in ALL if layer(n) in ("notary", "people",
                                                                         "shared")))
def test_the_domain_never_imports_the_web(name):
    assert {m for m in ours(imports_of(ALL[name], name)) if layer(m) == "web"} == set()


@pytest.mark.parametrize("name", sorted(n for n in ALL if layer(n) in ("people", "shared")))
def test_people_and_the_shared_modules_never_import_the_notary(name):
    """The notary uses people (sites, tokens, the audit trail), never the other way round."""
    assert {m for m in ours(imports_of(ALL[name], name)) if layer(m) == "notary"} == set()


def test_the_rules_see_every_subpackage():
    assert {layer(name) for name in ALL} >= {*SUBPACKAGES, "shared"}


def errors_defined_in(name: str) -> list[type]:
    module = importlib.import_module(name)
    return [value for value in vars(module).values()
            if isinstance(value, type) and issubclass(value, BaseException)
            and value.__module__ == name]


@pytest.mark.parametrize("name", sorted(n for n in ALL if not n.endswith("__main__")))
def test_every_error_has_its_layers_root(name):
    """One hierarchy: proof's errors under ``ProofError`` (it installs alone), every other
    error under ``TrialnotaryError``; the web's HTTP answers stay werkzeug's."""
    from werkzeug.exceptions import HTTPException

    from trialnotary.errors import TrialnotaryError
    from trialnotary.proof.errors import ProofError

    root = ProofError if layer(name) == "proof" else (TrialnotaryError, HTTPException)
    assert [error for error in errors_defined_in(name) if not issubclass(error, root)] == []
