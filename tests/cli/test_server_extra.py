"""A server command where the server's packages are not installed refuses in one line that
says how to install them; the client's commands and every --help still work. (The real base
install: tests/system/test_packaging.py.)"""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from trialnotary.cli import main
from trialnotary.cli.server_extra import missing_server_packages

INSTALL = "pip install 'trialnotary[server]'"


@pytest.fixture
def installed_without_the_server(tmp_path, monkeypatch):
    """Metadata of an installed trialnotary whose server extra names a package that is not
    installed, found first on the path."""
    info = tmp_path / "trialnotary-0.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: trialnotary\nVersion: 0.1.0\n"
        "Requires-Dist: requests>=2.31\n"
        "Provides-Extra: server\n"
        'Requires-Dist: click>=8.1; extra == "server"\n'
        'Requires-Dist: no-such-package-here>=1.0; extra == "server"\n')
    monkeypatch.syspath_prepend(str(tmp_path))


def invoke(*arguments: str):
    return CliRunner().invoke(main, list(arguments), prog_name="trialnotary")


def test_the_missing_packages_are_those_of_the_server_extra(installed_without_the_server):
    assert missing_server_packages() == ["no-such-package-here"]


@pytest.mark.parametrize(("arguments", "path"), [
    (["serve"], "serve"), (["db", "upgrade"], "db upgrade"), (["chain", "status"], "chain status"),
    (["user", "add", "a@example.org", "--role", "admin"], "user add"),
])
def test_a_server_command_says_in_one_line_what_to_install(installed_without_the_server,
                                                           arguments, path):
    result = invoke(*arguments)
    assert result.exit_code == 1
    assert result.output == (f"Error: `trialnotary {path}` runs the notary, whose packages are "
                             f"not installed (no-such-package-here): {INSTALL}\n")


def test_help_and_the_client_commands_still_work(installed_without_the_server, tmp_path):
    assert invoke("serve", "--help").exit_code == 0
    assert invoke("db", "upgrade", "--help").exit_code == 0
    assert INSTALL in invoke("--help").output
    result = invoke("verify", str(tmp_path / "missing.receipt.json"))
    assert result.exit_code == 2 and INSTALL not in result.output
