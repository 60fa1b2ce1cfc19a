"""Safety checks on generated file sets."""

from __future__ import annotations

import posixpath
import time
from typing import get_args

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vibeplane.generation.checks import (
    DEFAULT_EXTENSIONS,
    FileLimits,
    UnsafeOutputError,
    UnsafeReason,
    check_files,
    check_path,
)

MiB = 1024 * 1024


def _reason(files: dict[str, str | bytes], limits: FileLimits | None = None) -> str:
    with pytest.raises(UnsafeOutputError) as err:
        check_files(files, limits)
    assert err.value.message
    assert str(err.value).startswith(err.value.reason + ": ")
    return err.value.reason


def test_a_normal_app_passes() -> None:
    check_files(
        {
            "index.html": "<!doctype html>\n",
            "app.js": "console.log(1);\n",
            "style.css": b"body {}\n",
            "assets/logo.svg": "<svg/>",
            "data/items.json": "[]",
            "README.md": "# App\n",
            "server/main.py": "print()\n",
            "pages/About.HTML": "uppercase extensions count too\n",
        }
    )


def test_an_empty_bundle_passes() -> None:
    check_files({})


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("../x.js", "PathTraversal"),
        ("a/../../x.js", "PathTraversal"),
        ("a/../b.js", "PathTraversal"),
        ("..", "PathTraversal"),
        ("..\\x.js", "PathTraversal"),
        ("/etc/passwd.txt", "AbsolutePath"),
        ("/index.html", "AbsolutePath"),
        ("\\index.html", "AbsolutePath"),
        ("C:/x.js", "AbsolutePath"),
        ("c:x.js", "AbsolutePath"),
        ("a\\b.js", "InvalidPath"),
        ("~/x.js", "InvalidPath"),
        ("~x.js", "InvalidPath"),
        ("", "InvalidPath"),
        ("a//b.js", "InvalidPath"),
        ("a/", "InvalidPath"),
        ("./a.js", "InvalidPath"),
        ("a/./b.js", "InvalidPath"),
        (".env", "InvalidPath"),
        (".git/config.txt", "InvalidPath"),
        ("a\x00.js", "InvalidPath"),
        ("a\n.js", "InvalidPath"),
        ("a\x7f.js", "InvalidPath"),
        ("evil\u202egnp.js", "InvalidPath"),
        ("zero\u200bwidth.js", "InvalidPath"),
        ("-rf.js", "InvalidPath"),
        ("a b.js", "InvalidPath"),
        ("caf\u00e9.js", "InvalidPath"),
        ("x" * 300 + ".js", "InvalidPath"),
        ("/".join(["d"] * 12) + "/x.js", "InvalidPath"),
    ],
)
def test_unsafe_paths_are_refused_with_their_reason(path: str, reason: str) -> None:
    assert _reason({path: "x"}) == reason


@pytest.mark.parametrize(
    "path", ["run.sh", "app.exe", "logo.png", "lib.so", "Makefile", "Dockerfile", "a.js.bat", "x."]
)
def test_disallowed_kinds_are_refused(path: str) -> None:
    assert _reason({path: "x"}) == "DisallowedFileKind"


@pytest.mark.parametrize(
    "content", [b"\x89PNG\r\n\x1a\n\xff\xfe", b"text\x00more", "text\x00more", "\udcff"]
)
def test_binary_content_is_refused(content: str | bytes) -> None:
    assert _reason({"data.json": content}) == "DisallowedFileKind"


def test_extensions_are_configurable() -> None:
    limits = FileLimits(allowed_extensions=DEFAULT_EXTENSIONS | {"vue"})
    check_files({"App.vue": "<template/>"}, limits)
    assert _reason({"App.vue": "<template/>"}) == "DisallowedFileKind"


def test_ten_thousand_files_are_refused_at_once() -> None:
    files: dict[str, str | bytes] = {f"f{i}.js": "x" for i in range(10_000)}
    start = time.perf_counter()
    assert _reason(files) == "TooManyFiles"
    assert time.perf_counter() - start < 0.5


def test_ten_thousand_files_are_checked_in_linear_time_when_allowed() -> None:
    files: dict[str, str | bytes] = {f"d{i % 50}/f{i}.js": "x" for i in range(10_000)}
    start = time.perf_counter()
    check_files(files, FileLimits(max_files=20_000))
    assert time.perf_counter() - start < 5


@pytest.mark.parametrize("kind", [str, bytes])
def test_a_fifty_megabyte_file_is_refused_without_scanning_it(kind: type) -> None:
    content = "x" * (50 * 1000 * 1000)
    big: str | bytes = content if kind is str else content.encode()
    start = time.perf_counter()
    assert _reason({"big.txt": big}) == "FileTooLarge"
    assert time.perf_counter() - start < 0.5


def test_file_size_counts_utf8_bytes() -> None:
    check_files({"a.txt": "x" * MiB})
    assert _reason({"a.txt": "\u00e9" * (MiB // 2 + 1)}) == "FileTooLarge"


def test_the_total_size_is_limited() -> None:
    files: dict[str, str | bytes] = {f"part{i}.txt": "x" * MiB for i in range(6)}
    assert _reason(files) == "BundleTooLarge"
    check_files(dict(list(files.items())[:5]))


def test_paths_differing_only_in_case_are_refused() -> None:
    assert _reason({"App.js": "a", "app.js": "b"}) == "DuplicatePath"


def test_a_file_cannot_also_be_a_folder() -> None:
    assert _reason({"a.js": "a", "a.js/b.js": "b"}) == "PathConflict"


def test_the_first_violation_in_path_order_is_reported() -> None:
    assert _reason({"z/../x.js": "x", "/a.js": "y"}) == "AbsolutePath"


def test_non_string_paths_and_contents_are_refused() -> None:
    assert _reason({1: "x"}) == "InvalidPath"  # type: ignore[dict-item]
    assert _reason({"a.txt": 1}) == "DisallowedFileKind"  # type: ignore[dict-item]
    with pytest.raises(UnsafeOutputError):
        check_path(None)


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(
        st.text(max_size=30) | st.text("ab./\\~-_.", max_size=12),
        st.text(max_size=50) | st.binary(max_size=50),
        max_size=8,
    )
)
def test_arbitrary_bundles_either_pass_safely_or_raise_unsafe_output(
    files: dict[str, str | bytes],
) -> None:
    try:
        check_files(files)
    except UnsafeOutputError as e:
        reason, message = e.reason, e.message
    else:
        _assert_safe_paths(files)
        return
    assert reason in get_args(UnsafeReason)
    assert message


def _assert_safe_paths(files: dict[str, str | bytes]) -> None:
    for path in files:
        assert posixpath.normpath(path) == path
        assert not posixpath.isabs(path)
        assert ".." not in path.split("/")
        assert "\\" not in path
        assert path.isascii()
        assert not any(segment.startswith(".") for segment in path.split("/"))
