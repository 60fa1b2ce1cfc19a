from __future__ import annotations

import pytest

from vibeplane.cli import main, parser


def test_commands_parse() -> None:
    assert parser().parse_args(["cluster", "down", "--purge"]).purge
    assert parser().parse_args(["up", "--no-examples"]).no_examples
    args = parser().parse_args(["cluster", "kubectl", "get", "ns", "-o", "name"])
    assert args.kubectl_args == ["get", "ns", "-o", "name"]


def test_kubeconfig_path_is_the_last_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VIBEPLANE_HOME", "/tmp/vp-home")
    with pytest.raises(SystemExit) as exit_info:
        main(["cluster", "kubeconfig"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.splitlines()[-1] == "/tmp/vp-home/cluster/admin.kubeconfig"
