"""bench.node's stand-in start runs from any checkout: one under /tmp too, which the sandbox masks
(while the stand-in lasts)."""

from __future__ import annotations

import shutil
from pathlib import Path

from bench import node, preview
from tests.runtime.sandbox.conftest import runsc  # noqa: F401  (the fixture: runsc works here)
from vibeplane.generation.format import apply_output, parse_output
from vibeplane.storage.bundles import build
from vibeplane_modelserver.builtin import generate
from vibeplane_sandbox.runtime import Runsc


def test_a_sandboxed_start_from_a_checkout_under_tmp(
    runsc: Runsc,  # noqa: F811
    tmp_path: Path,
) -> None:
    checkout = tmp_path / "checkout" / "runtime" / "sandbox" / "vibeplane_sandbox"
    checkout.mkdir(parents=True)
    copy = checkout / "preview.py"
    shutil.copyfile(preview.PREVIEW, copy)
    assert str(copy).startswith("/tmp/")
    files = apply_output({}, parse_output(generate(["a todo list"], None).text))
    bundle = build(files)
    url = preview._serve_bundle(bundle.data)
    seconds = node.sandboxed_start(url, bundle.sha256, tmp_path / "state", preview=copy)
    assert 0 < seconds < 60
