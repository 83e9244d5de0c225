"""What setup.cfg declares, and what installing it brings, read from the installed packages'
metadata: for the tests that hold the client and the verifier to the base install."""

from __future__ import annotations

import configparser
import importlib.metadata
import re
from collections.abc import Iterable
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]


def normalized(distribution: str) -> str:
    return re.sub(r"[-_.]+", "-", distribution).lower()


def requirements(*extras: str) -> list[Requirement]:
    """The base install's requirements (setup.cfg), and those of ``extras``."""
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    lines = config["options"]["install_requires"].splitlines()
    for extra in extras:
        lines += config["options.extras_require"][extra].splitlines()
    return [Requirement(line) for line in map(str.strip, lines) if line]


def declared(*extras: str) -> set[str]:
    """The distributions the base install and ``extras`` name."""
    return {normalized(requirement.name) for requirement in requirements(*extras)}


def installed_with(wanted: Iterable[Requirement]) -> set[str]:
    """The installed distributions ``wanted`` brings, transitively (each with the extras it
    is asked for); an optional one that is not installed is left out."""
    found: set[tuple[str, frozenset]] = set()
    waiting = [(requirement.name, frozenset(requirement.extras)) for requirement in wanted]
    while waiting:
        name, extras = waiting.pop()
        if (normalized(name), extras) in found:
            continue
        try:
            needs = importlib.metadata.requires(name) or []
        except importlib.metadata.PackageNotFoundError:
            continue
        found.add((normalized(name), extras))
        for requirement in map(Requirement, needs):
            if requirement.marker is None or any(requirement.marker.evaluate({"extra": extra})
                                                 for extra in {"", *extras}):
                waiting.append((requirement.name, frozenset(requirement.extras)))
    return {name for name, _ in found}


def imported_only_by_the_server() -> set[str]:
    """The top-level import names that only packages the server extra brings provide (what
    a base install does not have)."""
    only_the_server = installed_with(requirements("server")) - installed_with(requirements())
    return {top for top, distributions in importlib.metadata.packages_distributions().items()
            if {normalized(d) for d in distributions} <= only_the_server}
