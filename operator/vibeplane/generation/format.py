"""The vibeplane output format: how a model answers with the files of an app.

The model's instructions are `FORMAT_SPEC`, a constant (never this docstring, which
`python -OO` strips); `system_prompt` sends it. The operator and the model server's builtin
generator both use this module: it is the one contract between them.

`parse_output` turns an answer into a `ParsedOutput`, `apply_output` applies it to the previous
revision's files, `render_output` and `render_files` are the inverse. Every malformed answer
raises `OutputFormatError`, whose `reason` (CamelCase, usable as a Kubernetes condition reason)
is one of `FormatErrorReason`.
Path safety (traversal, kinds, sizes) is not judged here but by `checks.check_files`. Line
endings are normalised to `\\n` (CRLF and lone CR alike).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Literal, TypeAlias

# What the model reads, word for word: the system prompt ends with it.
FORMAT_SPEC: Final[str] = """\
The vibeplane output format: how a model answers with the files of an app.

Answer with plain text. Everything outside the tags below is your commentary to the user:
explain briefly what you did, or, when you cannot or will not build what was asked, say so
and write no tags at all. Tags are recognised only when a tag is alone on its line (spaces
around it are allowed); do not start a commentary line with one of the tag names. Do not wrap
the answer or file contents in Markdown code fences: contents are taken literally.

1. A whole file (creates the file, or replaces it when it exists):

<file path="index.html">
<!doctype html>
<title>Hello</title>
</file>

   The content is every line between the opening and the closing line, each ending with a
   newline (a non-empty file always ends with one). A content line may not consist of only
   `</file>`, nor of only an opening `<file ...>`, `<edit ...>` or `<delete .../>` tag: such a
   line means a missing `</file>`.

2. Edits of a file of the current revision, as search/replace pairs:

<edit path="app.js">
<search>
const greeting = "Hello";
</search>
<replace>
const greeting = "Hello, world";
</replace>
</edit>

   Search and replace texts are whole lines. The search text must occur exactly once in the
   file, at the start of a line, copied exactly (whitespace included); give a few more lines of
   context when a line occurs more than once. An empty replace block deletes the lines. Pairs
   are applied in order, each to the result of the previous one. Blank lines between the
   blocks of an edit are ignored; anything else there is an error.

3. Deletion of a file of the current revision:

<delete path="old.js"/>

Paths are relative POSIX paths inside the app (`index.html`, `js/app.js`), written in double
or single quotes; other attributes are ignored. Each path may appear in at most one tag of an
answer. Files you do not mention stay as they are. Write text files only (HTML, CSS,
JavaScript, JSON, Markdown, SVG and the like): no binaries or other images, no hidden files
(a name starting with `.`), no `..`, no absolute paths."""

FormatErrorReason: TypeAlias = Literal[
    "UnterminatedTag",
    "UnexpectedTag",
    "MalformedTag",
    "MissingPath",
    "EmptyPath",
    "DuplicatePath",
    "MalformedEdit",
    "EmptyEdit",
    "EmptySearch",
    "EditTargetMissing",
    "DeleteTargetMissing",
    "EditSearchNotFound",
    "EditSearchAmbiguous",
    "Unrenderable",
    "MalformedRequest",
]


class OutputFormatError(ValueError):
    """A model's answer (or a request) that does not follow the format."""

    def __init__(self, reason: FormatErrorReason, message: str) -> None:
        super().__init__(reason, message)
        self.reason: FormatErrorReason = reason
        self.message = message

    def __str__(self) -> str:
        return f"{self.reason}: {self.message}"


@dataclass(frozen=True)
class WholeFile:
    """`<file>`: the complete new content of one file."""

    path: str
    content: str


@dataclass(frozen=True)
class SearchReplace:
    """One pair of an edit; both texts are whole lines, each ending with a newline."""

    search: str
    replace: str


@dataclass(frozen=True)
class Edit:
    """`<edit>`: search/replace pairs applied in order to one file of the previous revision."""

    path: str
    pairs: tuple[SearchReplace, ...]


@dataclass(frozen=True)
class Delete:
    """`<delete/>`: removal of one file of the previous revision."""

    path: str


Action: TypeAlias = WholeFile | Edit | Delete


@dataclass(frozen=True)
class ParsedOutput:
    """A parsed answer: the file actions in answer order, and the commentary around them."""

    actions: tuple[Action, ...]
    message: str

    @property
    def has_changes(self) -> bool:
        return bool(self.actions)

    @property
    def paths(self) -> tuple[str, ...]:
        return tuple(a.path for a in self.actions)


# A line is "tag-like" when it starts with a tag name and ends with `>`: such a line must be a
# well-formed tag, so a model's near-miss fails loudly instead of turning into commentary.
_TAGLIKE = re.compile(r"<(/?)(file|edit|delete|search|replace)(?:[\s/>].*)?>", re.DOTALL)
_OPEN = re.compile(r"<(file|edit)(\s[^<>]*)?>", re.DOTALL)
_DELETE = re.compile(r"<delete(\s[^<>]*?)?\s*/>", re.DOTALL)
_ATTR = re.compile(r"\s*([A-Za-z_][\w.-]*)\s*=\s*(?:\"([^\"]*)\"|'([^']*)')")


def _normalise_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _lines(text: str) -> list[str]:
    """Lines of `text` without their newlines; a final newline does not start a line."""
    if not text:
        return []
    parts = text.split("\n")
    if parts[-1] == "":
        parts.pop()
    return parts


def _join(lines: Sequence[str]) -> str:
    return "".join(line + "\n" for line in lines)


def _is_taglike(stripped: str) -> bool:
    return _TAGLIKE.fullmatch(stripped) is not None


def _parse_attrs(raw: str, tag: str, lineno: int) -> dict[str, str]:
    attrs: dict[str, str] = {}
    pos = 0
    while pos < len(raw):
        if raw[pos:].strip() == "":
            break
        m = _ATTR.match(raw, pos)
        if m is None:
            raise OutputFormatError(
                "MalformedTag",
                f"line {lineno}: cannot read the attributes of <{tag}>: {raw.strip()!r}; "
                'write them as name="value"',
            )
        name = m.group(1)
        if name in attrs:
            raise OutputFormatError(
                "MalformedTag", f"line {lineno}: <{tag}> has the attribute {name!r} twice"
            )
        attrs[name] = m.group(2) if m.group(2) is not None else m.group(3)
        pos = m.end()
    return attrs


def _path_of(raw: str | None, tag: str, lineno: int) -> str:
    attrs = _parse_attrs(raw or "", tag, lineno)
    if "path" not in attrs:
        raise OutputFormatError("MissingPath", f'line {lineno}: <{tag}> needs a path="..."')
    path = attrs["path"]
    if path == "":
        raise OutputFormatError("EmptyPath", f"line {lineno}: <{tag}> has an empty path")
    return path


def _opener(stripped: str, lineno: int) -> tuple[str, str] | None:
    """(tag, path) when `stripped` is an opening `<file>`/`<edit>`/`<delete/>` tag."""
    m = _OPEN.fullmatch(stripped)
    if m is not None:
        return m.group(1), _path_of(m.group(2), m.group(1), lineno)
    m = _DELETE.fullmatch(stripped)
    if m is not None:
        return "delete", _path_of(m.group(1), "delete", lineno)
    return None


def _is_opener_line(stripped: str) -> bool:
    """Whether a content line is an opening tag (a sign of a missing closing line)."""
    if not _is_taglike(stripped):
        return False
    try:
        return _opener(stripped, 0) is not None
    except OutputFormatError:
        return False


def parse_output(text: str) -> ParsedOutput:
    """Parse a model's answer. Raises `OutputFormatError` for anything malformed."""
    lines = _normalise_newlines(text).split("\n")
    actions: list[Action] = []
    seen: dict[str, int] = {}
    commentary: list[str] = []
    i = 0
    n = len(lines)
    while i < n:
        line = lines[i]
        stripped = line.strip()
        lineno = i + 1
        taglike = _TAGLIKE.fullmatch(stripped)
        if taglike is None:
            commentary.append(line)
            i += 1
            continue
        opened = _opener(stripped, lineno)
        if opened is None:
            if taglike.group(1) or taglike.group(2) in ("search", "replace"):
                raise OutputFormatError(
                    "UnexpectedTag", f"line {lineno}: {stripped!r} outside of a matching block"
                )
            raise OutputFormatError(
                "MalformedTag",
                f"line {lineno}: malformed tag {stripped[:80]!r}; tags must be alone on their "
                'line, like <file path="a.js">, <edit path="a.js"> or <delete path="a.js"/>',
            )
        tag, path = opened
        if path in seen:
            raise OutputFormatError(
                "DuplicatePath",
                f"line {lineno}: {path!r} already appears on line {seen[path]}; "
                "use one tag per path (an edit may hold several search/replace pairs)",
            )
        seen[path] = lineno
        if tag == "delete":
            actions.append(Delete(path))
            i += 1
        elif tag == "file":
            content, i = _read_block(lines, i + 1, "file", path, lineno)
            actions.append(WholeFile(path, _join(content)))
        else:
            edit, i = _read_edit(lines, i + 1, path, lineno)
            actions.append(edit)
    # Blocks leave blank lines behind in the commentary; keep at most one in a row.
    message = re.sub(r"\n[ \t]*(?:\n[ \t]*)+\n", "\n\n", "\n".join(commentary)).strip()
    return ParsedOutput(tuple(actions), message)


def _read_block(
    lines: Sequence[str], start: int, tag: str, path: str, open_line: int
) -> tuple[list[str], int]:
    """Content lines of a `<file>`, `<search>` or `<replace>` block, and the index after it."""
    closing = f"</{tag}>"
    i = start
    while i < len(lines):
        stripped = lines[i].strip()
        if stripped == closing:
            return list(lines[start:i]), i + 1
        if _is_opener_line(stripped):
            break
        i += 1
    where = f"line {i + 1}" if i < len(lines) else "the end of the answer"
    raise OutputFormatError(
        "UnterminatedTag",
        f"<{tag}> of {path!r} opened on line {open_line} has no {closing} before {where}",
    )


def _read_edit(lines: Sequence[str], start: int, path: str, open_line: int) -> tuple[Edit, int]:
    pairs: list[SearchReplace] = []
    search: list[str] | None = None
    i = start
    while i < len(lines):
        stripped = lines[i].strip()
        lineno = i + 1
        if stripped == "":
            i += 1
        elif stripped == "</edit>":
            if search is not None:
                raise OutputFormatError(
                    "MalformedEdit",
                    f"line {lineno}: edit of {path!r} has a <search> without its <replace>",
                )
            if not pairs:
                raise OutputFormatError(
                    "EmptyEdit", f"line {lineno}: edit of {path!r} has no search/replace pair"
                )
            return Edit(path, tuple(pairs)), i + 1
        elif stripped == "<search>" and search is None:
            block, i = _read_block(lines, i + 1, "search", path, lineno)
            if not block:
                raise OutputFormatError(
                    "EmptySearch", f"line {lineno}: edit of {path!r} has an empty <search>"
                )
            search = block
        elif stripped == "<replace>" and search is not None:
            block, i = _read_block(lines, i + 1, "replace", path, lineno)
            pairs.append(SearchReplace(_join(search), _join(block)))
            search = None
        elif _is_opener_line(stripped):
            raise OutputFormatError(
                "UnterminatedTag",
                f"<edit> of {path!r} opened on line {open_line} has no </edit> before "
                f"line {lineno}",
            )
        else:
            expected = "<replace>" if search is not None else "<search> or </edit>"
            raise OutputFormatError(
                "MalformedEdit",
                f"line {lineno}: in the edit of {path!r} expected {expected}, "
                f"found {stripped[:80]!r}",
            )
    raise OutputFormatError(
        "UnterminatedTag",
        f"<edit> of {path!r} opened on line {open_line} has no </edit> before the end",
    )


def apply_edit(path: str, old: str, search: str, replace: str) -> str:
    """`old` with the unique whole-line occurrence of `search` replaced by `replace`.

    A file without a final newline is matched as if it had one, and keeps lacking it.
    """
    if not search:
        raise OutputFormatError("EmptySearch", f"edit of {path!r} has an empty search text")
    if not search.endswith("\n"):
        search += "\n"
    if replace and not replace.endswith("\n"):
        replace += "\n"
    added_newline = bool(old) and not old.endswith("\n")
    text = old + "\n" if added_newline else old
    # Prefixing a newline makes every match start at a line boundary.
    haystack, needle = "\n" + text, "\n" + search
    first = haystack.find(needle)
    if first < 0:
        raise OutputFormatError(
            "EditSearchNotFound",
            f"the search text of an edit of {path!r} does not occur in the file: "
            f"{_preview(search)}",
        )
    if haystack.find(needle, first + 1) >= 0:
        raise OutputFormatError(
            "EditSearchAmbiguous",
            f"the search text of an edit of {path!r} occurs more than once; give more "
            f"context lines: {_preview(search)}",
        )
    result = text[:first] + replace + text[first + len(search) :]
    if added_newline and result.endswith("\n"):
        result = result[:-1]
    return result


def _preview(text: str) -> str:
    first = text.split("\n", 1)[0]
    return repr(first[:80] + ("..." if len(first) > 80 or "\n" in text.rstrip("\n") else ""))


def apply_output(previous: Mapping[str, str], parsed: ParsedOutput) -> dict[str, str]:
    """The full file set after applying `parsed` to `previous` (which is not modified).

    Raises `OutputFormatError` when an edit or deletion does not fit the previous files.
    """
    files = dict(previous)
    for action in parsed.actions:
        if isinstance(action, WholeFile):
            files[action.path] = action.content
        elif isinstance(action, Delete):
            if action.path not in files:
                raise OutputFormatError(
                    "DeleteTargetMissing", f"cannot delete {action.path!r}: no such file"
                )
            del files[action.path]
        else:
            if action.path not in files:
                raise OutputFormatError(
                    "EditTargetMissing",
                    f"cannot edit {action.path!r}: no such file in the previous revision; "
                    "write it whole with <file>",
                )
            text = files[action.path]
            for pair in action.pairs:
                text = apply_edit(action.path, text, pair.search, pair.replace)
            files[action.path] = text
    return {path: files[path] for path in sorted(files)}


def _check_renderable_line(line: str, closing: str, what: str) -> None:
    stripped = line.strip()
    if stripped == closing or _is_opener_line(stripped):
        raise OutputFormatError(
            "Unrenderable", f"{what} has a line {stripped[:80]!r} that the format cannot carry"
        )


def _render_path(path: str) -> str:
    if not path or '"' in path or "\n" in path or "\r" in path or path != path.strip():
        raise OutputFormatError("Unrenderable", f"the path {path!r} cannot be written in a tag")
    return path


def _render_block(tag: str, text: str, what: str) -> list[str]:
    lines = _lines(_normalise_newlines(text))
    for line in lines:
        _check_renderable_line(line, f"</{tag}>", what)
    return lines


def render_output(actions: Iterable[Action], message: str = "") -> str:
    """The answer text for `actions` (the inverse of `parse_output`).

    Contents are normalised like `parse_output` does: newlines to `\\n`, and a final newline
    on non-empty texts. Raises `OutputFormatError("Unrenderable", ...)` for content the format
    cannot carry (see the spec) and for duplicated paths.
    """
    out: list[str] = []
    message = _normalise_newlines(message).strip()
    for line in message.split("\n") if message else []:
        if _is_taglike(line.strip()):
            raise OutputFormatError(
                "Unrenderable", f"the message has a tag-like line {line.strip()[:80]!r}"
            )
        out.append(line)
    if out:
        out.append("")
    seen: set[str] = set()
    for action in actions:
        path = _render_path(action.path)
        if path in seen:
            raise OutputFormatError("DuplicatePath", f"{path!r} appears in two actions")
        seen.add(path)
        if isinstance(action, WholeFile):
            out.append(f'<file path="{path}">')
            out.extend(_render_block("file", action.content, f"the content of {path!r}"))
            out.append("</file>")
        elif isinstance(action, Delete):
            out.append(f'<delete path="{path}"/>')
        else:
            if not action.pairs:
                raise OutputFormatError("EmptyEdit", f"edit of {path!r} has no pairs")
            out.append(f'<edit path="{path}">')
            for pair in action.pairs:
                search = _render_block("search", pair.search, f"a search text of {path!r}")
                if not search:
                    raise OutputFormatError("EmptySearch", f"edit of {path!r}: empty search")
                out.append("<search>")
                out.extend(search)
                out.append("</search>")
                out.append("<replace>")
                out.extend(_render_block("replace", pair.replace, f"a replace text of {path!r}"))
                out.append("</replace>")
            out.append("</edit>")
    return "\n".join(out) + "\n" if out else ""


def render_files(files: Mapping[str, str]) -> str:
    """Whole-file blocks for `files`, sorted by path (the inverse of parsing them)."""
    return render_output(WholeFile(path, files[path]) for path in sorted(files))


# The chat request. The system message carries the spec; the previous revision's files and
# the prompts already applied travel in user messages whose first line is a fixed header, so a
# server (the builtin generator's) can read them back with `read_messages`.

ChatMessage: TypeAlias = dict[str, str]

FILES_HEADER: Final = "The app's current files (change them with <edit>, <file> or <delete/>):"
HISTORY_HEADER: Final = "Requests already applied to the app, oldest first (as JSON strings):"


def system_prompt(stack: str = "static") -> str:
    """The system message: what to build and the output format."""
    stacks = {
        "static": "a static web app: index.html, style.css and app.js in vanilla JavaScript, "
        "no build step, no CDN or network fetches; keep data in localStorage",
        "python": "a small Python web app using only the standard library, started with "
        "`python app.py`, listening on the port in the PORT environment variable",
        "node": "a small Node.js web app using only Node's standard library, started with "
        "`node server.js`, listening on the port in the PORT environment variable",
    }
    what = stacks.get(stack, stacks["static"])
    return (
        f"You write complete, working apps from a user's request. Build {what}. "
        "Change an existing app with the smallest edits that do the job.\n\n" + FORMAT_SPEC
    )


def build_messages(
    prompts: Sequence[str], previous_files: Mapping[str, str] | None, stack: str = "static"
) -> list[ChatMessage]:
    """The chat messages asking for the revision that applies `prompts[-1]`.

    `prompts[:-1]` are the requests already applied to `previous_files` (the previous
    revision); pure, so the same inputs give the same request (and cache key).
    """
    if not prompts:
        raise OutputFormatError("MalformedRequest", "a request needs at least one prompt")
    messages: list[ChatMessage] = [{"role": "system", "content": system_prompt(stack)}]
    if previous_files:
        messages.append(
            {"role": "user", "content": FILES_HEADER + "\n\n" + render_files(previous_files)}
        )
    if len(prompts) > 1:
        history = "\n".join(json.dumps(p) for p in prompts[:-1])
        messages.append({"role": "user", "content": HISTORY_HEADER + "\n" + history})
    messages.append({"role": "user", "content": prompts[-1]})
    return messages


def content_text(content: object) -> str:
    """A message's text: a string, or the text parts of an OpenAI content-part list (anything
    else has none). The one flattening for the operator, its client and the model server."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            str(part.get("text", ""))
            for part in content
            if isinstance(part, Mapping) and part.get("type") == "text"
        )
    return ""


def read_messages(
    messages: Sequence[Mapping[str, object]],
) -> tuple[list[str], dict[str, str]]:
    """(prompts, previous files) from chat messages, the inverse of `build_messages`.

    Lenient for other clients: user messages without a known header count as prompts, in
    order; system and assistant messages are ignored.
    """
    prompts: list[str] = []
    files: dict[str, str] = {}
    for message in messages:
        if message.get("role") != "user":
            continue
        content = _normalise_newlines(content_text(message.get("content")))
        head, _, rest = content.partition("\n")
        if head == FILES_HEADER:
            for action in parse_output(rest).actions:
                if not isinstance(action, WholeFile):
                    raise OutputFormatError(
                        "MalformedRequest", "the files message may hold only <file> blocks"
                    )
                files[action.path] = action.content
        elif head == HISTORY_HEADER:
            for line in rest.split("\n"):
                if not line.strip():
                    continue
                try:
                    prompt = json.loads(line)
                except ValueError as e:
                    raise OutputFormatError(
                        "MalformedRequest", f"a history line is not a JSON string: {e}"
                    ) from None
                if not isinstance(prompt, str):
                    raise OutputFormatError(
                        "MalformedRequest", "a history line is not a JSON string"
                    )
                prompts.append(prompt)
        else:
            prompts.append(content)
    if not prompts:
        raise OutputFormatError("MalformedRequest", "the messages hold no prompt")
    return prompts, files
