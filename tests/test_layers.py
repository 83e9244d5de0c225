"""The architecture, as import rules: what each subpackage may import, and which installed
packages each part needs (every one declared in setup.cfg; the client's and the verifier's
only in the base install).

Read from the source (every import statement, at any depth), so a new module or a local
import cannot slip past.
"""

from __future__ import annotations

import ast
import importlib
import importlib.metadata
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import pytest

from tests.installs import ROOT, declared, normalized

PACKAGE = ROOT / "trialnotary"
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
    return imports_among(ast.walk(ast.parse(path.read_text())), path, name)


def imports_on_loading(path: Path, name: str) -> set[str]:
    """The modules ``path`` imports when it is loaded: its imports outside functions (and
    outside ``if TYPE_CHECKING:``)."""
    return imports_among(statements_on_loading(ast.parse(path.read_text()).body), path, name)


def statements_on_loading(statements: Iterable[ast.AST]) -> Iterator[ast.AST]:
    for statement in statements:
        if isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        if isinstance(statement, ast.If) and "TYPE_CHECKING" in ast.unparse(statement.test):
            yield from statements_on_loading(statement.orelse)
            continue
        yield statement
        for field in ("body", "orelse", "finalbody", "handlers"):
            yield from statements_on_loading(getattr(statement, field, []))


def imports_among(nodes: Iterable[ast.AST], path: Path, name: str) -> set[str]:
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in nodes:
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


# --- the installed packages each part needs --------------------------------------------

LOCAL = {"trialnotary", "tests", "bench", "build_vendor"}
PROVIDED_BY = importlib.metadata.packages_distributions()


def installed_packages_imported(modules: dict[str, Callable[[], set[str]]]) -> dict[str, set]:
    """For each module, the distributions its third-party imports come from (an import no
    installed distribution provides is named as it is)."""
    needs = {}
    for name, read_imports in modules.items():
        tops = {imported.split(".")[0] for imported in read_imports()}
        needs[name] = {frozenset(map(normalized, PROVIDED_BY.get(top, [f"?{top}"])))
                       for top in tops - LOCAL - set(sys.stdlib_module_names)}
    return needs


def undeclared(needs: dict[str, set], allowed: set[str]) -> dict[str, set]:
    """Per module, what it imports that ``allowed`` does not hold (of a top-level name
    several distributions provide, one declared is enough)."""
    found = {name: {"|".join(sorted(options)) for options in wanted if not options & allowed}
             for name, wanted in needs.items()}
    return {name: missing for name, missing in found.items() if missing}


def sources(folder: str) -> dict[str, Callable[[], set[str]]]:
    return {path.relative_to(ROOT).as_posix(): (lambda p=path: imports_of(p, "x.y"))
            for path in sorted((ROOT / folder).rglob("*.py"))}


@pytest.mark.parametrize(("folder", "extras"), [
    ("trialnotary", ("server",)), ("migrations", ("server",)),
    ("tests", ("server", "test")), ("bench", ("server", "test")),
])
def test_every_imported_package_is_declared(folder, extras):
    """In the base install or the extra its part is installed with (setup.cfg)."""
    assert undeclared(installed_packages_imported(sources(folder)), declared(*extras)) == {}


def modules_used(nodes: Iterable[ast.AST], path: Path, name: str) -> set[str]:
    """The modules of ours whose code the import statements among ``nodes`` reach: ``from
    X import Y`` reaches the module X.Y, or X when Y is a name in it (X is then only loaded)."""
    used = set()
    for node in nodes:
        if not isinstance(node, ast.Import | ast.ImportFrom):
            continue
        imported = imports_among([node], path, name)
        if isinstance(node, ast.ImportFrom):
            base = min(imported, key=len)
            named = imported - {base}
            imported = (named & ALL.keys()) | ({base} if named - ALL.keys() else set())
        used |= imported & ALL.keys()
    return used


def loaded_with(*, started: Iterable[str] = (), run: Iterable[str] = ()) -> dict[str, bool]:
    """Every module of ours that loading ``started`` and running the functions of ``run``
    can load, each with whether its functions may run (so that the imports inside them
    count) or it is only loaded. Importing ``a.b.c`` loads ``a`` and ``a.b`` first."""
    found: dict[str, bool] = {}
    waiting = [(name, False) for name in started] + [(name, True) for name in run]
    while waiting:
        name, runs = waiting.pop()
        if name in found and (found[name] or not runs):
            continue
        found[name] = runs
        tree = ast.parse(ALL[name].read_text())
        nodes = ast.walk(tree) if runs else statements_on_loading(tree.body)
        waiting += [(module, runs) for module in modules_used(nodes, ALL[name], name)]
        waiting += [(".".join(name.split(".")[:depth]), False)
                    for depth in range(1, name.count(".") + 1)]
    return found


def client_side() -> dict[str, Callable[[], set[str]]]:
    """What the client's commands can load: ``trialnotary`` itself as it starts (the server
    commands' modules loaded, not run), and all that ``verify``, ``submit`` and ``receipt``
    import, at any depth."""
    loaded = loaded_with(started=["trialnotary.cli", "trialnotary.cli.__main__"],
                         run=["trialnotary.cli.remote"])
    read = {True: imports_of, False: imports_on_loading}
    return {name: (lambda n=name, r=read[runs]: r(ALL[n], n)) for name, runs in loaded.items()}


def test_the_client_commands_and_the_verifier_need_only_the_base_install():
    """`pip install trialnotary` runs verify, submit and receipt (docs/cli.md)."""
    modules = client_side()
    assert {"trialnotary.proof.verify.rpc", "trialnotary.cli.client",
            "trialnotary.cli.receipts", "trialnotary.cli.operator"} <= modules.keys()
    assert undeclared(installed_packages_imported(modules), declared()) == {}


def test_the_verifier_loads_nothing_but_the_proof():
    loaded = loaded_with(run=["trialnotary.proof.verify"])
    assert {name for name in loaded if layer(name) != "proof"} == {"trialnotary"}
    assert "trialnotary.proof.verify.rpc" in loaded


def test_the_base_install_holds_no_part_of_the_server():
    assert declared() & {"flask", "sqlalchemy", "sqlmodel", "web3", "eth-account",
                         "pydantic", "gunicorn", "alembic"} == set()


def test_the_whole_proof_core_needs_only_the_base_install():
    """Not only what `verify` loads: every module of proof/ (building trees is the notary's)."""
    modules = {name: (lambda n=name: imports_of(ALL[n], n))
               for name in ALL if layer(name) == "proof"}
    assert "trialnotary.proof.receipt" in modules
    assert undeclared(installed_packages_imported(modules), declared()) == {}
