"""Rendering an `AppSpec` into index.html, style.css and app.js, and reading it back."""

from __future__ import annotations

import html
import json
from collections.abc import Mapping
from typing import Final

from pydantic import ValidationError

from vibeplane_modelserver.builtin import assets
from vibeplane_modelserver.builtin.spec import AppSpec, Field
from vibeplane_modelserver.builtin.words import COLORS, capitalise


def _e(text: str) -> str:
    return html.escape(text, quote=True)


def _head(spec: AppSpec) -> list[str]:
    return [
        "<!doctype html>",
        '<html lang="en">',
        "<head>",
        '  <meta charset="utf-8">',
        '  <meta name="viewport" content="width=device-width, initial-scale=1">',
        f"  <title>{_e(spec.title)}</title>",
        '  <link rel="stylesheet" href="style.css">',
        "</head>",
        "<body>",
    ]


_TAIL: Final = ['  <script src="app.js"></script>', "</body>", "</html>"]


def _input_lines(field: Field, indent: str) -> list[str]:
    ident = f"field-{field.key}"
    required = " required" if field.required else ""
    label = f'{indent}  <label for="{ident}">{_e(field.label)}</label>'
    if field.type == "checkbox":
        return [
            f'{indent}<div class="field field-checkbox">',
            f'{indent}  <input id="{ident}" name="{field.key}" type="checkbox">',
            label,
            f"{indent}</div>",
        ]
    lines = [f'{indent}<div class="field">', label]
    if field.type == "textarea":
        lines.append(f'{indent}  <textarea id="{ident}" name="{field.key}"{required}></textarea>')
    elif field.type == "select":
        lines.append(f'{indent}  <select id="{ident}" name="{field.key}"{required}>')
        for option in field.options:
            lines.append(
                f'{indent}    <option value="{_e(option)}">{_e(capitalise(option))}</option>'
            )
        lines.append(f"{indent}  </select>")
    else:
        extra = ' step="any"' if field.type == "number" else ""
        lines.append(
            f'{indent}  <input id="{ident}" name="{field.key}" type="{field.type}"'
            f"{extra}{required}>"
        )
    lines.append(f"{indent}</div>")
    return lines


def _page_header(spec: AppSpec) -> list[str]:
    return [
        '    <header class="page-header">',
        f"      <h1>{_e(spec.title)}</h1>",
        f'      <p class="tagline">{_e(spec.tagline)}</p>',
        "    </header>",
    ]


def _list_html(spec: AppSpec) -> list[str]:
    lines = ['  <main class="container">', *_page_header(spec)]
    lines += [
        '    <section class="card" aria-labelledby="form-heading">',
        '      <h2 id="form-heading">Add an item</h2>',
        '      <form id="item-form" autocomplete="off">',
    ]
    for field in spec.fields:
        lines += _input_lines(field, "        ")
    lines += [
        '        <div class="actions">',
        '          <button type="submit" id="submit-button">Add</button>',
        '          <button type="button" id="cancel-edit" class="secondary" hidden>Cancel</button>',
        "        </div>",
        "      </form>",
        "    </section>",
        '    <section class="card" aria-labelledby="list-heading">',
        '      <div class="toolbar">',
        '        <h2 id="list-heading">Items</h2>',
        '        <input id="filter" type="search" placeholder="Search" aria-label="Search items">',
        "      </div>",
        '      <p id="empty" class="empty">Nothing here yet. Add the first item above.</p>',
        '      <div class="table-wrap">',
        '        <table id="items">',
        "          <thead>",
        "            <tr>",
    ]
    lines += [f'              <th scope="col">{_e(f.label)}</th>' for f in spec.fields]
    lines += [
        '              <th scope="col"><span class="visually-hidden">Actions</span></th>',
        "            </tr>",
        "          </thead>",
        "          <tbody></tbody>",
        "        </table>",
        "      </div>",
        '      <p id="count" class="count"></p>',
        "    </section>",
        "  </main>",
    ]
    return lines


def _form_html(spec: AppSpec) -> list[str]:
    lines = ['  <main class="container narrow">', *_page_header(spec)]
    lines += ['    <section class="card">', '      <form id="entry-form">']
    for field in spec.fields:
        lines += _input_lines(field, "        ")
    lines += [
        '        <div class="actions">',
        f'          <button type="submit">{_e(spec.submit_label)}</button>',
        "        </div>",
        "      </form>",
        '      <p id="status" class="status" role="status"></p>',
        "    </section>",
        '    <section class="card" aria-labelledby="responses-heading">',
        '      <div class="toolbar">',
        '        <h2 id="responses-heading">Saved responses</h2>',
        '        <button type="button" id="clear" class="secondary" hidden>Clear</button>',
        "      </div>",
        '      <p id="empty" class="empty">No responses yet.</p>',
        '      <ol id="responses" class="responses"></ol>',
        "    </section>",
        "  </main>",
    ]
    return lines


def _landing_html(spec: AppSpec) -> list[str]:
    nav = [(f"#{s.key}", s.heading) for s in spec.sections]
    cta_target = "#contact" if spec.signup else nav[0][0] if nav else "#"
    if spec.signup:
        nav.append(("#contact", "Contact"))
    lines = [
        '  <header class="hero">',
        '    <nav class="nav" aria-label="Main">',
        f'      <span class="brand">{_e(spec.title)}</span>',
        "      <ul>",
    ]
    lines += [f'        <li><a href="{href}">{_e(text)}</a></li>' for href, text in nav]
    lines += [
        "      </ul>",
        "    </nav>",
        '    <div class="hero-body">',
        f"      <h1>{_e(spec.title)}</h1>",
        f'      <p class="tagline">{_e(spec.tagline)}</p>',
        f'      <a class="button" href="{cta_target}">{_e(spec.cta)}</a>',
        "    </div>",
        "  </header>",
        "  <main>",
    ]
    for n, section in enumerate(spec.sections):
        alt = " section-alt" if n % 2 else ""
        lines += [
            f'    <section id="{section.key}" class="section{alt}">',
            '      <div class="container">',
            f"        <h2>{_e(section.heading)}</h2>",
            f"        <p>{_e(section.body)}</p>",
        ]
        if section.tiles:
            lines.append('        <div class="grid">')
            for tile in section.tiles:
                lines.append(
                    f'          <article class="tile"><h3>{_e(tile.title)}</h3>'
                    f"<p>{_e(tile.text)}</p></article>"
                )
            lines.append("        </div>")
        lines += ["      </div>", "    </section>"]
    if spec.signup:
        lines += [
            '    <section id="contact" class="section section-alt">',
            '      <div class="container">',
            "        <h2>Stay in touch</h2>",
            "        <p>Leave your email and we will let you know about news and offers.</p>",
            '        <form id="signup-form" class="signup">',
            '          <label for="signup-email" class="visually-hidden">Email</label>',
            '          <input id="signup-email" name="email" type="email" '
            'placeholder="you@example.com" required>',
            '          <button type="submit">Sign up</button>',
            "        </form>",
            '        <p id="signup-status" class="status" role="status"></p>',
            "      </div>",
            "    </section>",
        ]
    lines += [
        "  </main>",
        '  <footer class="footer">',
        f'    <div class="container">&copy; <span id="year"></span> {_e(spec.title)}</div>',
        "  </footer>",
    ]
    return lines


def _dashboard_html(spec: AppSpec) -> list[str]:
    metric = _e(spec.metric)
    lines = ['  <main class="container">', *_page_header(spec)]
    lines += [
        '    <section class="kpis" aria-label="Key figures">',
        '      <div class="kpi"><span class="kpi-label">Total</span>'
        '<span id="kpi-total" class="kpi-value">-</span></div>',
        '      <div class="kpi"><span class="kpi-label">Average</span>'
        '<span id="kpi-average" class="kpi-value">-</span></div>',
        '      <div class="kpi"><span class="kpi-label">Best period</span>'
        '<span id="kpi-best" class="kpi-value">-</span></div>',
        "    </section>",
        '    <section class="card">',
        f'      <h2 id="chart-heading">{metric} by period</h2>',
        '      <svg id="chart" viewBox="0 0 640 320" role="img" aria-labelledby="chart-heading">'
        "</svg>",
        "    </section>",
        '    <section class="card">',
        "      <h2>Data</h2>",
        '      <form id="point-form" class="point-form">',
        '        <div class="field">',
        '          <label for="point-label">Period</label>',
        '          <input id="point-label" name="label" type="text" required>',
        "        </div>",
        '        <div class="field">',
        f'          <label for="point-value">{metric}</label>',
        '          <input id="point-value" name="value" type="number" step="any" required>',
        "        </div>",
        '        <button type="submit">Add</button>',
        "      </form>",
        '      <div class="table-wrap">',
        '        <table id="points">',
        "          <thead>",
        "            <tr>",
        '              <th scope="col">Period</th>',
        f'              <th scope="col">{metric}</th>',
        '              <th scope="col"><span class="visually-hidden">Actions</span></th>',
        "            </tr>",
        "          </thead>",
        "          <tbody></tbody>",
        "        </table>",
        "      </div>",
        '      <div class="actions">',
        '        <button type="button" id="reset" class="secondary">Reset to sample data</button>',
        "      </div>",
        "    </section>",
        "  </main>",
    ]
    return lines


_BODY = {
    "list": (_list_html, assets.LIST_JS, ""),
    "form": (_form_html, assets.FORM_JS, assets.CSS_FORM),
    "landing": (_landing_html, assets.LANDING_JS, assets.CSS_LANDING),
    "dashboard": (_dashboard_html, assets.DASHBOARD_JS, assets.CSS_DASHBOARD),
}


def _config_js(spec: AppSpec) -> str:
    config = json.dumps(spec.model_dump(mode="json"), indent=2, sort_keys=True, ensure_ascii=True)
    return f"{assets.CONFIG_BEGIN}\nconst APP = {config};\n{assets.CONFIG_END}\n"


def render_app(spec: AppSpec) -> dict[str, str]:
    """The files of the app `spec` describes: index.html, style.css and app.js."""
    body, script, kind_css = _BODY[spec.kind]
    page = [*_head(spec), *body(spec), *_TAIL]
    contrast = "#111827" if spec.accent in (COLORS["yellow"], COLORS["lime"]) else "#ffffff"
    palette = assets.CSS_DARK if spec.theme == "dark" else assets.CSS_LIGHT
    css = (
        assets.CSS_HEADER
        + f":root {{\n  --accent: {spec.accent};\n  --accent-contrast: {contrast};\n"
        + palette
        + "}\n\n"
        + assets.CSS_BASE
        + kind_css
    )
    js = assets.JS_HEADER + "\n" + _config_js(spec) + "\n" + script
    return {"app.js": js, "index.html": "\n".join(page) + "\n", "style.css": css}


def read_spec(files: Mapping[str, str]) -> AppSpec | None:
    """The spec written into app.js by this generator, or None for anyone else's files."""
    js = files.get("app.js")
    if not isinstance(js, str):
        return None
    begin = js.find(assets.CONFIG_BEGIN + "\n")
    end = js.find("\n" + assets.CONFIG_END, begin)
    if begin < 0 or end < 0:
        return None
    block = js[begin + len(assets.CONFIG_BEGIN) + 1 : end].strip()
    if not block.startswith("const APP = ") or not block.endswith(";"):
        return None
    try:
        return AppSpec.model_validate_json(block[len("const APP = ") : -1])
    except (ValidationError, ValueError):
        return None
