"""How the web's views are built, as rules read from the source: the pages and the API
share helpers through ``web.responses`` and never import each other, and their views call
the domain's services instead of querying the database."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

WEB = Path(__file__).resolve().parents[2] / "trialnotary" / "web"
VIEWS = sorted([*(WEB / "pages").glob("*.py"), WEB / "api.py", WEB / "responses.py"])
#: What only services may use: the database's query builders and its tables.
QUERY_MODULES = ("sqlalchemy", "sqlmodel", "trialnotary.notary.models",
                 "trialnotary.people.models")


def imported(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            found.add(node.module or "")
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


@pytest.mark.parametrize("path", VIEWS, ids=lambda path: str(path.relative_to(WEB)))
def test_views_run_no_queries(path):
    assert {name for name in imported(path)
            if name.split(".")[0] in QUERY_MODULES or name.startswith(QUERY_MODULES[2:])} \
        == set()


@pytest.mark.parametrize("path", [p for p in VIEWS if p.parent.name == "pages"],
                         ids=lambda path: path.name)
def test_pages_do_not_import_the_api(path):
    assert {name for name in imported(path) if name.startswith("trialnotary.web.api")} == set()
