"""The builtin generator's apps in a real browser (headless Chromium): what the markup hides
stays hidden once the stylesheet applies."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from vibeplane.generation.format import apply_output, parse_output
from vibeplane_modelserver.builtin import generate

# Runs after app.js: the ids of the elements marked `hidden` and of those still displayed.
PROBE = """<script>
  const marked = Array.from(document.querySelectorAll("[hidden]"));
  document.body.dataset.hidden = marked.map((e) => e.id).join(",");
  document.body.dataset.shown = marked
    .filter((e) => getComputedStyle(e).display !== "none")
    .map((e) => e.id)
    .join(",");
</script>
"""


def _chromium() -> str:
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.fail("chromium is not installed: `make test` installs it (apt-get install chromium)")
    return chromium


@pytest.mark.parametrize(
    ("prompt", "hidden"),
    [
        ("a todo list with title and due date", "cancel-edit"),
        ("a contact form with name, email and message", "clear"),
    ],
)
def test_elements_marked_hidden_are_not_displayed(prompt: str, hidden: str, tmp_path: Path) -> None:
    files = apply_output({}, parse_output(generate([prompt], None).text))
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    page = tmp_path / "index.html"
    page.write_text(files["index.html"].replace("</body>", PROBE + "</body>"))
    dom = subprocess.run(
        [
            _chromium(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    body = re.search(r'<body data-hidden="([^"]*)" data-shown="([^"]*)"', dom.stdout)
    assert body is not None, dom.stderr[-2000:]
    assert hidden in body.group(1).split(",")
    assert body.group(2) == ""
