"""The fixed JavaScript and CSS of the builtin generator's apps, read from `static/`.

Each app's behaviour is generic per kind and driven by the `APP` config object that the
renderer writes at the top of app.js, so a follow-up prompt changes the config (and the
markup) while these scripts stay byte-identical: the edits of a follow-up stay small.
Everything is vanilla ES2020 for the browser, with no network access; data lives in
localStorage under the app's own key.

The files are package data, so editors and linters see them as what they are. A script shares
helpers through a line `// vibeplane:include NAME` that stands for the file NAME, and the
palettes are `:root` rules whose declarations go into the app's own `:root` rule.
"""

from __future__ import annotations

import re
from importlib.resources import files
from typing import Final

CONFIG_BEGIN: Final = "// vibeplane:config-begin"
CONFIG_END: Final = "// vibeplane:config-end"

_INCLUDE = re.compile(r"^[ \t]*// vibeplane:include (\S+)\n", re.MULTILINE)


def _read(name: str) -> str:
    return (files(__package__) / "static" / name).read_text(encoding="utf-8")


def _script(name: str) -> str:
    return _INCLUDE.sub(lambda match: _read(match.group(1)), _read(name))


def _declarations(name: str) -> str:
    """The declarations inside the one rule of a palette file, each line as written."""
    lines = _read(name).splitlines(keepends=True)
    if not lines or lines[0].strip() != ":root {" or lines[-1].strip() != "}":
        raise ValueError(f"static/{name} must hold one `:root {{ ... }}` rule")
    return "".join(lines[1:-1])


JS_HEADER: Final = _read("header.js")
LIST_JS: Final = _script("list.js")
FORM_JS: Final = _script("form.js")
LANDING_JS: Final = _script("landing.js")
DASHBOARD_JS: Final = _script("dashboard.js")

CSS_HEADER: Final = _read("header.css")
CSS_LIGHT: Final = _declarations("light.css")
CSS_DARK: Final = _declarations("dark.css")
CSS_BASE: Final = _read("base.css")
CSS_FORM: Final = _read("form.css")
CSS_LANDING: Final = _read("landing.css")
CSS_DASHBOARD: Final = _read("dashboard.css")
