from __future__ import annotations

from importlib.metadata import EntryPoints

import pytest

from vibeplane import cli
from vibeplane.cli import main, parser


def test_operator_commands_parse() -> None:
    assert parser().parse_args(["operator", "--verbose"]).verbose
    assert parser().parse_args(["manifests", "--root", "/x"]).root == "/x"


def test_the_development_platform_adds_its_commands_when_installed() -> None:
    # `make venv` installs hack/ (vibeplane-dev): its entry point adds the README's commands.
    assert parser().parse_args(["up", "--no-examples"]).no_examples
    assert parser().parse_args(["cluster", "down", "--purge"]).purge


def test_without_the_development_platform_its_commands_say_how_to_get_them(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # As in the operator's image: the `vibeplane.commands` group is empty.
    monkeypatch.setattr(cli, "entry_points", lambda group: EntryPoints(()))
    with pytest.raises(SystemExit) as exit_info:
        main(["up"])
    assert exit_info.value.code == 1
    assert "pip install -e hack" in capsys.readouterr().err
    assert parser().parse_args(["operator"]).command == "operator"
