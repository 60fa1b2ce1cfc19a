"""Model output, end to end: answer text -> files -> checks -> bundle -> extracted in the sandbox.

test_format.py and test_checks.py hold the parser's and the checks' own properties (any text
is an answer or an OutputFormatError; any file set passes safely or raises UnsafeOutputError).
What they leave open is the chain the operator runs on an answer (vibeapp/generate.py) and
what the preview runtime then does with the stored bundle:

- a path with a `..` segment, an absolute path, or a backslash, written in a well-formed tag,
  is always refused, whatever surrounds it;
- anything the chain accepts extracts, with the sandbox's own extractor, to exactly those
  files, all inside the app's folder;
- the size limits are exact: a file set passes if and only if it is within every limit, and
  a refusal names a limit it breaks.
"""

from __future__ import annotations

import io
import tarfile
from collections.abc import Mapping
from pathlib import Path
from typing import get_args

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vibeplane.generation.checks import FileLimits, UnsafeOutputError, UnsafeReason, check_files
from vibeplane.generation.format import OutputFormatError, apply_output, parse_output
from vibeplane.storage import bundles
from vibeplane_sandbox.preview import extract

# Segments an attacker (or a confused model) would try, and some ordinary ones.
SEGMENTS = st.sampled_from(
    ["..", ".", "", "~", "~root", "C:", "c:", "a", "js", "app.js", "index.html", "%2e%2e",
     "..%2f", ".env", ".git", "a\\..\\b", "..\\x.js", " ", "\x00", "\u202e", "é.js", "...."]
) | st.text(max_size=6)  # fmt: skip
LEADS = st.sampled_from(["", "", "", "/", "\\", "//", "./", "~/", "C:\\", "file:"])
HOSTILE_PATHS = st.builds(
    lambda lead, segments: (lead + "/".join(segments)).replace('"', "").replace("\n", ""),
    LEADS,
    st.lists(SEGMENTS, min_size=1, max_size=5),
)
NAMES = st.sampled_from(
    ["a", "js", "lib", "app.js", "index.html", "style.css", "logo.svg", "x_1.md", "v1.2.json"]
)
# Half ordinary, half hostile: the accepted side is exercised as much as the refused one.
PATHS = st.lists(NAMES, min_size=1, max_size=3).map("/".join) | HOSTILE_PATHS
PREVIOUS = {"index.html": "<h1>Hi</h1>\n", "app.js": "let a = 1;\n"}


def _answer(paths: list[str]) -> str:
    return "Here you go.\n" + "".join(f'<file path="{p}">\nx\n</file>\n' for p in paths)


def _escapes(path: str) -> bool:
    """Whether a path could leave the app's folder on any file system we serve from."""
    segments = path.replace("\\", "/").split("/")
    return ".." in segments or path.startswith(("/", "\\")) or path[1:2] == ":"


def _generate(answer: str) -> dict[str, str]:
    """What vibeapp/generate.py does with an answer before storing it."""
    files = apply_output(PREVIOUS, parse_output(answer))
    check_files(files)
    return files


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(PATHS, min_size=1, max_size=4, unique=True))
def test_a_path_that_could_leave_the_app_is_always_refused(paths: list[str]) -> None:
    answer = _answer(paths)
    if not any(_escapes(p) for p in paths):
        return
    with pytest.raises((OutputFormatError, UnsafeOutputError)) as refused:
        _generate(answer)
    if isinstance(refused.value, UnsafeOutputError):
        assert refused.value.reason in get_args(UnsafeReason)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(paths=st.lists(PATHS, min_size=1, max_size=4, unique=True))
def test_what_is_accepted_extracts_inside_the_app_in_the_sandbox(
    paths: list[str], tmp_path_factory: pytest.TempPathFactory
) -> None:
    try:
        files = _generate(_answer(paths))
    except (OutputFormatError, UnsafeOutputError):
        return
    bundle = bundles.build(files)
    with tarfile.open(fileobj=io.BytesIO(bundle.data), mode="r:gz") as archive:
        assert all(member.isreg() for member in archive.getmembers())
    root = tmp_path_factory.mktemp("app")
    archive_path = root.parent / f"{root.name}.tar.gz"
    archive_path.write_bytes(bundle.data)
    assert extract(archive_path, root) == len(files)
    written = {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}
    assert written == set(files)
    for path in written:
        assert (root / path).resolve().is_relative_to(root.resolve())


LIMITS = FileLimits(max_files=4, max_file_bytes=64, max_total_bytes=160)
SAFE_PATHS = st.sampled_from(["index.html", "app.js", "style.css", "data.json", "a/b.md", "c.txt"])
# Multi-byte characters included: limits count UTF-8 bytes, not characters.
CONTENT = st.text(
    st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"), max_size=80
)


def _broken_limits(files: Mapping[str, str]) -> set[str]:
    sizes = [len(content.encode()) for content in files.values()]
    broken = set()
    if len(files) > LIMITS.max_files:
        broken.add("TooManyFiles")
    if any(size > LIMITS.max_file_bytes for size in sizes):
        broken.add("FileTooLarge")
    if sum(sizes) > LIMITS.max_total_bytes:
        broken.add("BundleTooLarge")
    return broken


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(SAFE_PATHS, CONTENT, max_size=6))
def test_size_limits_are_exact(files: dict[str, str]) -> None:
    broken = _broken_limits(files)
    if not broken:
        check_files(files, LIMITS)  # within every limit: accepted
        return
    with pytest.raises(UnsafeOutputError) as refused:
        check_files(files, LIMITS)
    assert refused.value.reason in broken


def test_an_oversized_answer_is_refused_through_the_parser_too(tmp_path: Path) -> None:
    # One line over the limit, in a well-formed answer: refused after parsing, before storage.
    answer = '<file path="big.js">\n' + "x" * (FileLimits().max_file_bytes) + "\n</file>\n"
    with pytest.raises(UnsafeOutputError) as refused:
        _generate(answer)
    assert refused.value.reason == "FileTooLarge"
