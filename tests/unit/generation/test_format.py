"""The tagged output format: parsing, applying, rendering, and its errors."""

from __future__ import annotations

import subprocess
import sys
from typing import get_args

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vibeplane.generation.format import (
    FORMAT_SPEC,
    Delete,
    Edit,
    FormatErrorReason,
    OutputFormatError,
    ParsedOutput,
    SearchReplace,
    WholeFile,
    apply_edit,
    apply_output,
    build_messages,
    parse_output,
    read_messages,
    render_files,
    render_output,
    system_prompt,
)

ANSWER = """\
I added a greeting and removed the old script.

<file path="index.html">
<!doctype html>
<h1>Hello</h1>
</file>

<edit path="app.js">
<search>
const a = 1;
</search>
<replace>
const a = 2;
const b = 3;
</replace>

<search>
console.log(a);
</search>
<replace>
</replace>
</edit>
<delete path='old.js'/>
Enjoy!
"""

PREVIOUS = {
    "app.js": "const a = 1;\nconsole.log(a);\nexport {};\n",
    "old.js": "legacy();\n",
    "keep.css": "body {}\n",
}


def test_parses_files_edits_deletions_and_commentary() -> None:
    parsed = parse_output(ANSWER)
    assert parsed.actions == (
        WholeFile("index.html", "<!doctype html>\n<h1>Hello</h1>\n"),
        Edit(
            "app.js",
            (
                SearchReplace("const a = 1;\n", "const a = 2;\nconst b = 3;\n"),
                SearchReplace("console.log(a);\n", ""),
            ),
        ),
        Delete("old.js"),
    )
    assert parsed.message == "I added a greeting and removed the old script.\n\nEnjoy!"
    assert parsed.has_changes
    assert parsed.paths == ("index.html", "app.js", "old.js")


def test_apply_produces_the_new_full_file_set_without_touching_the_previous() -> None:
    previous = dict(PREVIOUS)
    files = apply_output(previous, parse_output(ANSWER))
    assert files == {
        "app.js": "const a = 2;\nconst b = 3;\nexport {};\n",
        "index.html": "<!doctype html>\n<h1>Hello</h1>\n",
        "keep.css": "body {}\n",
    }
    assert list(files) == sorted(files)
    assert previous == PREVIOUS


def test_plain_answer_has_a_message_and_no_files() -> None:
    parsed = parse_output("I can't help with that: it is not a web app.\n")
    assert parsed == ParsedOutput((), "I can't help with that: it is not a web app.")
    assert not parsed.has_changes
    assert apply_output(PREVIOUS, parsed) == dict(sorted(PREVIOUS.items()))


def test_crlf_and_lone_cr_are_normalised() -> None:
    parsed = parse_output('<file path="a.txt">\r\nx\r\ny\rz\r\n</file>\r\n')
    assert parsed.actions == (WholeFile("a.txt", "x\ny\nz\n"),)


def test_empty_file_and_blank_lines_are_kept() -> None:
    parsed = parse_output('<file path="e.txt">\n</file>\n<file path="b.txt">\n\na\n\n</file>')
    assert parsed.actions == (WholeFile("e.txt", ""), WholeFile("b.txt", "\na\n\n"))


def test_tags_may_be_indented_and_take_other_attributes() -> None:
    parsed = parse_output('  <file  path="a.js" lang="js" >\nx\n  </file>  \n')
    assert parsed.actions == (WholeFile("a.js", "x\n"),)


def test_tag_names_inside_file_content_are_content() -> None:
    text = '<file path="doc.md">\nUse <search> and </edit> like this.\n<search>\n</file>'
    assert parse_output(text).actions == (
        WholeFile("doc.md", "Use <search> and </edit> like this.\n<search>\n"),
    )


def test_commentary_mentioning_tags_inline_is_fine() -> None:
    parsed = parse_output("Use a <file> block, then\nthe `</file>` line.")
    assert parsed.actions == ()


def test_edit_matches_whole_lines_only() -> None:
    assert apply_edit("a", "xfoo\nfoo\n", "foo\n", "bar\n") == "xfoo\nbar\n"
    with pytest.raises(OutputFormatError) as err:
        apply_edit("a", "xfoo\n", "foo\n", "bar\n")
    assert err.value.reason == "EditSearchNotFound"


def test_edit_of_a_file_without_final_newline_keeps_it_that_way() -> None:
    assert apply_edit("a", "one\ntwo", "two\n", "2\n") == "one\n2"
    assert apply_edit("a", "one\ntwo", "one\n", "") == "two"


def test_edit_pairs_apply_in_order() -> None:
    edit = Edit("a", (SearchReplace("x\n", "y\n"), SearchReplace("y\n", "z\n")))
    assert apply_output({"a": "x\n"}, ParsedOutput((edit,), "")) == {"a": "z\n"}


def test_overlapping_matches_are_ambiguous() -> None:
    with pytest.raises(OutputFormatError) as err:
        apply_edit("p.txt", "a\na\na\n", "a\na\n", "b\n")
    assert err.value.reason == "EditSearchAmbiguous"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ('<file path="a">\nx\n', "UnterminatedTag"),
        ('<file path="a">\nx\n<file path="b">\ny\n</file>', "UnterminatedTag"),
        ('<edit path="a">\n<search>\nx\n', "UnterminatedTag"),
        ('<edit path="a">\n<search>\nx\n</search>\n<replace>\ny\n</replace>\n', "UnterminatedTag"),
        ('<edit path="a">\n<search>\nx\n</search>\n<file path="b">\n', "UnterminatedTag"),
        ("</file>", "UnexpectedTag"),
        ("<search>", "UnexpectedTag"),
        ("</replace>", "UnexpectedTag"),
        ('<file path="a">x</file>', "MalformedTag"),
        ("<file path=a>", "MalformedTag"),
        ('<delete path="a">', "MalformedTag"),
        ('<file path="a"/>', "MalformedTag"),
        ('<file path="a" path="b">\n</file>', "MalformedTag"),
        ("<file>\n</file>", "MissingPath"),
        ('<delete name="a"/>', "MissingPath"),
        ('<file path="">\n</file>', "EmptyPath"),
        ('<file path="a">\n</file>\n<delete path="a"/>', "DuplicatePath"),
        ('<edit path="a">\nstray\n</edit>', "MalformedEdit"),
        ('<edit path="a">\n<search>\nx\n</search>\n</edit>', "MalformedEdit"),
        ('<edit path="a">\n<replace>\nx\n</replace>\n</edit>', "MalformedEdit"),
        ('<edit path="a">\n<search>\nx\n</search>\n<search>\n', "MalformedEdit"),
        ('<edit path="a">\n\n</edit>', "EmptyEdit"),
        ('<edit path="a">\n<search>\n</search>\n<replace>\n</replace>\n</edit>', "EmptySearch"),
    ],
)
def test_malformed_answers_raise_with_a_reason(text: str, reason: str) -> None:
    with pytest.raises(OutputFormatError) as err:
        parse_output(text)
    assert err.value.reason == reason
    assert err.value.message
    assert str(err.value).startswith(f"{reason}: ")


def _edit(path: str, search: str, replace: str = "new\n") -> ParsedOutput:
    return ParsedOutput((Edit(path, (SearchReplace(search, replace),)),), "")


@pytest.mark.parametrize(
    ("parsed", "reason"),
    [
        (_edit("missing.js", "x\n"), "EditTargetMissing"),
        (ParsedOutput((Delete("missing.js"),), ""), "DeleteTargetMissing"),
        (_edit("app.js", "not there\n"), "EditSearchNotFound"),
        (_edit("app.js", "dup\n"), "EditSearchAmbiguous"),
    ],
)
def test_edits_that_do_not_fit_raise_naming_the_path(parsed: ParsedOutput, reason: str) -> None:
    previous = {"app.js": "dup\nunique\ndup\n"}
    with pytest.raises(OutputFormatError) as err:
        apply_output(previous, parsed)
    assert err.value.reason == reason
    assert parsed.actions[0].path in err.value.message


def test_render_files_round_trips() -> None:
    files = {"b/x.js": "let x;\n", "a.html": "<p>\n\n</p>\n", "empty.txt": ""}
    text = render_files(files)
    assert text.index('path="a.html"') < text.index('path="b/x.js"')
    assert apply_output({}, parse_output(text)) == files


def test_render_adds_a_final_newline() -> None:
    parsed = parse_output(render_files({"a.txt": "no newline"}))
    assert parsed.actions == (WholeFile("a.txt", "no newline\n"),)


def test_render_output_round_trips_every_action_kind() -> None:
    parsed = parse_output(ANSWER)
    again = parse_output(render_output(parsed.actions, parsed.message))
    assert again.actions == parsed.actions
    assert again.message == parsed.message


@pytest.mark.parametrize(
    "files",
    [
        {"a.md": "before\n</file>\nafter\n"},
        {"a.md": '  <file path="x">\n'},
        {'a"b.txt': "x\n"},
        {"a\nb.txt": "x\n"},
        {"": "x\n"},
    ],
)
def test_unrenderable_content_is_refused(files: dict[str, str]) -> None:
    with pytest.raises(OutputFormatError) as err:
        render_files(files)
    assert err.value.reason == "Unrenderable"


def test_render_output_refuses_duplicates_and_tag_like_messages() -> None:
    with pytest.raises(OutputFormatError) as err:
        render_output([Delete("a"), Delete("a")])
    assert err.value.reason == "DuplicatePath"
    with pytest.raises(OutputFormatError) as err:
        render_output([], "hello\n</file>")
    assert err.value.reason == "Unrenderable"


def test_the_spec_examples_are_valid_answers() -> None:
    parsed = parse_output(FORMAT_SPEC)
    assert [type(a) for a in parsed.actions] == [WholeFile, Edit, Delete]
    assert "parse_output" not in FORMAT_SPEC  # nothing of the operator's notes
    assert FORMAT_SPEC in system_prompt("static")


def test_the_system_prompt_keeps_the_format_under_python_oo() -> None:
    # -OO strips docstrings: the format the model reads must not live in one.
    code = (
        "from vibeplane.generation.format import FORMAT_SPEC, parse_output, system_prompt; "
        "assert FORMAT_SPEC in system_prompt(); "
        "print(len(parse_output(FORMAT_SPEC).actions))"
    )
    result = subprocess.run(
        [sys.executable, "-OO", "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "3"


def test_messages_round_trip() -> None:
    prompts = ["a todo list", 'add a "priority" field\nplease', "rename it"]
    messages = build_messages(prompts, PREVIOUS)
    assert messages[0]["role"] == "system"
    assert messages[-1] == {"role": "user", "content": "rename it"}
    assert read_messages(messages) == (prompts, PREVIOUS)
    first = build_messages(prompts[:1], None)
    assert [m["role"] for m in first] == ["system", "user"]
    assert read_messages(first) == (prompts[:1], {})


def test_read_messages_is_lenient_with_other_clients() -> None:
    messages: list[dict[str, object]] = [
        {"role": "system", "content": "be nice"},
        {"role": "user", "content": [{"type": "text", "text": "a todo list"}]},
        {"role": "assistant", "content": "done"},
        {"role": "user", "content": "add a field"},
    ]
    assert read_messages(messages) == (["a todo list", "add a field"], {})
    with pytest.raises(OutputFormatError) as err:
        read_messages([{"role": "system", "content": "x"}])
    assert err.value.reason == "MalformedRequest"
    with pytest.raises(OutputFormatError):
        build_messages([], None)


# Property tests: any text is either an answer or an OutputFormatError, never anything else.

_TAGGY_LINES = st.sampled_from(
    [
        '<file path="a.js">',
        '<file path="b.js">',
        "<file path=''>",
        "<file>",
        "</file>",
        '<edit path="a.js">',
        "</edit>",
        "<search>",
        "</search>",
        "<replace>",
        "</replace>",
        '<delete path="a.js"/>',
        '<delete path="c.js" />',
        "x",
        "const a = 1;",
        "",
        "  ",
        "<file",
        '<file path="a.js">x</file>',
    ]
)
_TAGGY_TEXT = st.lists(st.one_of(_TAGGY_LINES, st.text(max_size=20)), max_size=30).map("\n".join)
_PREVIOUS = st.dictionaries(
    st.sampled_from(["a.js", "b.js", "c.js"]),
    st.lists(st.sampled_from(["x", "const a = 1;", "", "y"]), max_size=6).map(
        lambda lines: "".join(line + "\n" for line in lines)
    ),
)


def _parse_and_apply(text: str, previous: dict[str, str]) -> None:
    try:
        parsed = parse_output(text)
        files = apply_output(previous, parsed)
    except OutputFormatError as e:
        reason, message = e.reason, e.message
    else:
        assert isinstance(parsed.message, str)
        for action in parsed.actions:
            assert (action.path in files) != isinstance(action, Delete)
        return
    assert reason in get_args(FormatErrorReason)
    assert message


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(), _PREVIOUS)
def test_arbitrary_text_only_raises_output_format_errors(
    text: str, previous: dict[str, str]
) -> None:
    _parse_and_apply(text, previous)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_TAGGY_TEXT, _PREVIOUS)
def test_tag_heavy_text_only_raises_output_format_errors(
    text: str, previous: dict[str, str]
) -> None:
    _parse_and_apply(text, previous)


_CONTENT = st.lists(
    st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\r\n"), max_size=12),
    max_size=5,
).map(lambda lines: "".join(line + "\n" for line in lines))
_PATHS = st.text("abc./_-", min_size=1, max_size=8)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(_PATHS, _CONTENT, max_size=5))
def test_render_then_parse_is_identity_when_renderable(files: dict[str, str]) -> None:
    try:
        text = render_files(files)
    except OutputFormatError as e:
        reason = e.reason
    else:
        assert apply_output({}, parse_output(text)) == files
        return
    assert reason == "Unrenderable"
