"""The builtin generator: real apps, follow-ups, refusals, determinism."""

from __future__ import annotations

import hashlib
import html
import os
import re
import shutil
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vibeplane.generation.checks import check_files
from vibeplane.generation.format import (
    Edit,
    WholeFile,
    apply_output,
    build_messages,
    parse_output,
)
from vibeplane_modelserver.builtin import (
    AppSpec,
    generate,
    generate_from_messages,
    read_spec,
    render_app,
)

TODO = "a todo list with title and due date"
KINDS = {
    "list": (TODO, "Todo List"),
    "landing": ("a landing page for a coffee shop called Bean There", "Bean There"),
    "form": ("a contact form with name, email and message", "Contact Form"),
    "dashboard": ("a sales dashboard with a bar chart", "Sales Dashboard"),
}


def _revisions(prompts: Sequence[str]) -> list[dict[str, str]]:
    """The file set after each prompt, generating revision by revision like the operator."""
    files: dict[str, str] = {}
    history = []
    for n in range(1, len(prompts) + 1):
        answer = generate(prompts[:n], files or None)
        files = apply_output(files, parse_output(answer.text))
        history.append(files)
    return history


def _files(*prompts: str) -> dict[str, str]:
    return _revisions(prompts)[-1]


def _spec(files: Mapping[str, str]) -> AppSpec:
    spec = read_spec(files)
    assert spec is not None
    return spec


def _inputs(page: str) -> dict[str, str]:
    """name -> input type ("select"/"textarea" for those elements) of a page's form fields."""
    found = {}
    for tag, attrs in re.findall(r"<(input|select|textarea)\b([^>]*)>", page):
        name = re.search(r'name="([^"]+)"', attrs)
        kind = re.search(r'type="([^"]+)"', attrs)
        if name:
            found[name.group(1)] = kind.group(1) if tag == "input" and kind else tag
    return found


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Any]:
    """Write files to a temp dir and serve them over real HTTP on 127.0.0.1."""
    servers: list[ThreadingHTTPServer] = []

    def start(files: Mapping[str, str]) -> str:
        root = tmp_path / f"site{len(servers)}"
        for path, content in files.items():
            target = root / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content, encoding="utf-8")
        handler = partial(_QuietHandler, directory=str(root))
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def _get(url: str) -> tuple[int, str, str]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status, response.headers["Content-Type"], response.read().decode()


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_each_kind_is_a_safe_app_that_serves_over_http(kind: str, serve: Any) -> None:
    prompt, title = KINDS[kind]
    answer = generate([prompt], None)
    parsed = parse_output(answer.text)
    assert all(isinstance(a, WholeFile) for a in parsed.actions)
    assert parsed.message == answer.message
    assert title in answer.message
    files = apply_output({}, parsed)
    assert sorted(files) == ["app.js", "index.html", "style.css"]
    check_files(files)
    assert _spec(files).kind == kind

    base = serve(files)
    status, content_type, page = _get(base + "/")
    assert status == 200
    assert content_type.startswith("text/html")
    assert f"<title>{html.escape(title)}</title>" in page
    assert re.search(rf"<h1>{re.escape(html.escape(title))}</h1>", page)
    for asset in ("app.js", "style.css"):
        assert f'"{asset}"' in page
        assert _get(f"{base}/{asset}")[0] == 200
    # Self-contained: nothing is fetched from the network.
    for content in files.values():
        assert not re.search(r"(?:src|href)=\"(?:https?:)?//", content)
        assert "fetch(" not in content
        assert "XMLHttpRequest" not in content


def test_todo_list_fields_and_types() -> None:
    files = _files(TODO)
    assert _inputs(files["index.html"]) == {"title": "text", "due_date": "date"}
    assert [(f.label, f.type) for f in _spec(files).fields] == [
        ("Title", "text"),
        ("Due date", "date"),
    ]


def test_field_types_are_inferred() -> None:
    files = _files(
        "an order tracker with customer email, price, quantity, a done checkbox, priority, "
        "notes, deadline, website and phone"
    )
    inputs = _inputs(files["index.html"])
    assert inputs == {
        "customer_email": "email",
        "price": "number",
        "quantity": "number",
        "done": "checkbox",
        "priority": "select",
        "notes": "textarea",
        "deadline": "date",
        "website": "url",
        "phone": "tel",
    }
    for option in ("low", "medium", "high"):
        assert f'<option value="{option}">' in files["index.html"]


def test_add_a_priority_field_as_an_edit() -> None:
    first = _files(TODO)
    answer = generate([TODO, "add a priority field"], first)
    parsed = parse_output(answer.text)
    assert parsed.actions
    assert all(isinstance(a, Edit) for a in parsed.actions)
    second = apply_output(first, parsed)
    assert "Priority" in answer.message
    assert _inputs(second["index.html"])["priority"] == "select"
    assert '<th scope="col">Priority</th>' in second["index.html"]
    assert [f.label for f in _spec(second).fields] == ["Title", "Due date", "Priority"]
    check_files(second)


def test_rename_keeps_the_storage_key_and_changes_the_label() -> None:
    *_, files = _revisions([TODO, "rename due date to deadline"])
    page = files["index.html"]
    assert '<label for="field-due_date">Deadline</label>' in page
    assert "Due date" not in page
    field = _spec(files).fields[1]
    assert (field.key, field.label, field.type) == ("due_date", "Deadline", "date")


def test_remove_a_field() -> None:
    files = _files(TODO, "add a priority field", "remove the due date field")
    assert [f.label for f in _spec(files).fields] == ["Title", "Priority"]
    assert "due_date" not in _inputs(files["index.html"])


def test_follow_ups_apply_in_order_and_match_a_replay() -> None:
    prompts = [
        TODO,
        "add a priority field",
        "rename due date to deadline",
        "Thanks! Now add a notes field, and make it dark.",
        "change the title to Chores",
        "make the notes field a text field",
        "make it green",
    ]
    revisions = _revisions(prompts)
    final = revisions[-1]
    replay = apply_output({}, parse_output(generate(prompts, None).text))
    assert replay == final
    spec = _spec(final)
    assert spec.title == "Chores"
    assert spec.theme == "dark"
    assert spec.accent == "#16a34a"
    assert [(f.label, f.type) for f in spec.fields] == [
        ("Title", "text"),
        ("Deadline", "date"),
        ("Priority", "select"),
        ("Notes", "text"),
    ]
    assert "<title>Chores</title>" in final["index.html"]
    assert len({tuple(sorted(r.items())) for r in revisions}) == len(prompts)


def test_landing_page_follow_ups() -> None:
    files = _files(
        KINDS["landing"][0],
        "add a testimonials section",
        "rename the menu section to Drinks",
        "remove the about section",
        "change the tagline to Best beans in town",
    )
    spec = _spec(files)
    assert [s.heading for s in spec.sections] == ["Drinks", "Testimonials"]
    assert "Best beans in town." in files["index.html"]
    assert "Espresso" in files["index.html"]


def test_dashboard_chart_kinds() -> None:
    files = _files(KINDS["dashboard"][0])
    assert '<svg id="chart"' in files["index.html"]
    assert _spec(files).chart == "bar"
    assert len(_spec(files).points) == 6
    assert _spec(_files(KINDS["dashboard"][0], "make it a line chart")).chart == "line"
    assert _spec(_files("a pie chart of expenses by category")).chart == "pie"


@pytest.mark.parametrize(
    "prompt",
    [
        "write me a distributed database in Rust",
        "a chess engine with a neural network",
        "build a todo list in React",
        "a multiplayer 3d game",
        "hello",
        "",
    ],
)
def test_out_of_scope_prompts_get_a_plain_answer(prompt: str) -> None:
    answer = generate([prompt], None)
    parsed = parse_output(answer.text)
    assert parsed.actions == ()
    assert parsed.message == answer.message != ""


def test_out_of_scope_follow_up_changes_nothing() -> None:
    first = _files(TODO)
    for prompt in ["rewrite it in Go", "remove the colour field", "sing me a song"]:
        answer = generate([TODO, prompt], first)
        assert parse_output(answer.text).actions == ()
        assert answer.message


def test_a_follow_up_that_changes_nothing_writes_nothing() -> None:
    first = _files(TODO)
    answer = generate([TODO, "add a title field"], first)
    assert parse_output(answer.text).actions == ()


def test_replay_skips_prompts_it_cannot_do() -> None:
    answer = generate([TODO, "sing me a song", "add a priority field"], None)
    files = apply_output({}, parse_output(answer.text))
    assert [f.label for f in _spec(files).fields] == ["Title", "Due date", "Priority"]
    assert "Skipped prompt 2" in answer.message


def test_files_from_another_model_are_rewritten_and_others_kept() -> None:
    previous = {"index.html": "<h1>hand made</h1>\n", "notes.md": "mine\n"}
    answer = generate([TODO, "add a priority field"], previous)
    files = apply_output(previous, parse_output(answer.text))
    assert files["notes.md"] == "mine\n"
    assert [f.label for f in _spec(files).fields] == ["Title", "Due date", "Priority"]


def test_deterministic_output() -> None:
    prompts = [TODO, "add a priority field"]
    first = _files(TODO)
    assert generate(prompts, first) == generate(prompts, dict(first))
    for prompt, _title in KINDS.values():
        assert generate([prompt], None).text == generate([prompt], None).text


def test_deterministic_across_processes() -> None:
    code = (
        "import hashlib, sys; from vibeplane_modelserver.builtin import generate; "
        "t = ''.join(generate([p], None).text for p in sys.argv[1:]); "
        "print(hashlib.sha256(t.encode()).hexdigest())"
    )
    prompts = [p for p, _ in KINDS.values()]
    digests = {
        subprocess.run(
            [sys.executable, "-c", code, *prompts],
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        for seed in ("1", "2")
    }
    local = "".join(generate([p], None).text for p in prompts)
    assert digests == {hashlib.sha256(local.encode()).hexdigest()}


def test_chat_messages_give_the_same_answer() -> None:
    first = _files(TODO)
    prompts = [TODO, "add a priority field"]
    assert generate_from_messages(build_messages(prompts, first)) == generate(prompts, first)
    assert generate_from_messages(build_messages([TODO], None)) == generate([TODO], None)


def test_render_app_is_the_inverse_of_read_spec() -> None:
    for prompt, _title in KINDS.values():
        files = _files(prompt)
        assert render_app(_spec(files)) == files


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_generated_javascript_is_valid(tmp_path: Path) -> None:
    sets = [_files(p) for p, _ in KINDS.values()]
    sets.append(_files(TODO, "add a done checkbox and a priority field", "make it dark"))
    for n, files in enumerate(sets):
        script = tmp_path / f"app{n}.js"
        script.write_text(files["app.js"], encoding="utf-8")
        result = subprocess.run(
            ["node", "--check", str(script)], capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, result.stderr


_WORDS = st.sampled_from(
    [
        "a", "todo", "list", "with", "title", "and", "due", "date", "add", "remove", "rename",
        "to", "field", "the", "priority", "landing", "page", "for", "called", "Bean", "form",
        "dashboard", "chart", "line", "pie", "dark", "make", "it", "green", "section", ",",
        ".", "contact", "email", "in", "Rust", "<file", 'path="x">', "</file>", "\n", "“", "\"",
    ]
)  # fmt: skip
_PROMPT = st.one_of(st.lists(_WORDS, max_size=14).map(" ".join), st.text(max_size=40))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_PROMPT, min_size=1, max_size=4))
def test_any_prompts_give_a_valid_safe_answer(prompts: list[str]) -> None:
    files: dict[str, str] = {}
    for n in range(1, len(prompts) + 1):
        answer = generate(prompts[:n], files or None)
        parsed = parse_output(answer.text)
        assert parsed.message == answer.message
        files = apply_output(files, parsed)
        check_files(files)
        if parsed.actions:
            assert read_spec(files) is not None
