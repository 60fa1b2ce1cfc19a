"""Safety checks on a generated file set, before it is stored or served.

A bundle is untrusted model output. It is accepted only when:

- it holds at most `FileLimits.max_files` files (checked first, in constant time, so a
  bundle of 10,000 files is refused without looking at any of them);
- every path is a relative POSIX path inside the app: no absolute path (`/x`, `C:/x`), no
  `..` segment, no backslash, no empty or `.` segment, no hidden segment (leading `.`, which
  also covers `.git/` and `.env`), no leading `~`, no control or invisible formatting
  characters (NUL, DEL, bidirectional overrides), and each segment made of ASCII letters,
  digits and `._-+@` starting with a letter, digit or `_`; at most `max_path_length`
  characters and `max_depth` segments;
- its kind is allowed: the file name's extension (case-insensitive) is in
  `FileLimits.allowed_extensions` (text formats for web pages, styles, scripts, data and
  docs: see `DEFAULT_EXTENSIONS`), and the content is text: valid UTF-8 without NUL
  characters. Files without an extension, executables (`.sh`, `.exe`), binaries and images
  other than SVG are refused; so are symbolic links, which the text format cannot express
  anyway: the bundle writer creates regular files only;
- each file is at most `max_file_bytes` and all together at most `max_total_bytes`, counted
  in UTF-8 bytes. Sizes are checked before content is scanned, so a 50 MB file is refused
  without reading it.

- no two paths differ only in case (`DuplicatePath`), and no file is also used as a folder of
  another (`PathConflict`).

`check_files` raises `UnsafeOutputError` with a CamelCase `reason` (usable as a Kubernetes
condition reason) for the first violation, in sorted path order, so the result is
deterministic.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final, Literal, TypeAlias

UnsafeReason: TypeAlias = Literal[
    "TooManyFiles",
    "InvalidPath",
    "AbsolutePath",
    "PathTraversal",
    "DuplicatePath",
    "PathConflict",
    "DisallowedFileKind",
    "FileTooLarge",
    "BundleTooLarge",
]

DEFAULT_EXTENSIONS: Final[frozenset[str]] = frozenset(
    {
        # Web pages, styles and scripts.
        "html",
        "htm",
        "css",
        "js",
        "mjs",
        "cjs",
        "jsx",
        "ts",
        "tsx",
        "map",
        # Data, configuration and documents.
        "json",
        "webmanifest",
        "txt",
        "md",
        "csv",
        "xml",
        "svg",
        "toml",
        "cfg",
        "ini",
        "yaml",
        "yml",
        # Server code for the python stack (run inside the sandbox, never on the host).
        "py",
    }
)

MiB: Final = 1024 * 1024


class UnsafeOutputError(ValueError):
    """A generated file set that must not be stored or served."""

    def __init__(self, reason: UnsafeReason, message: str) -> None:
        super().__init__(reason, message)
        self.reason: UnsafeReason = reason
        self.message = message

    def __str__(self) -> str:
        return f"{self.reason}: {self.message}"


@dataclass(frozen=True)
class FileLimits:
    """What a bundle may hold."""

    max_files: int = 200
    max_file_bytes: int = 1 * MiB
    max_total_bytes: int = 5 * MiB
    max_path_length: int = 255
    max_depth: int = 8
    allowed_extensions: frozenset[str] = field(default=DEFAULT_EXTENSIONS)


_SEGMENT: Final = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+@-]*")
_DRIVE: Final = re.compile(r"[A-Za-z]:")


def _bad_char(path: str) -> str | None:
    """The first control or invisible formatting character of `path`, if any."""
    for ch in path:
        # Cc: C0/C1 controls and DEL; Cf: zero-width and bidi overrides; Cs: lone surrogates;
        # Zl/Zp: line and paragraph separators.
        if unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Zl", "Zp"):
            return ch
    return None


def check_path(path: object, limits: FileLimits | None = None) -> None:
    """Raise `UnsafeOutputError` unless `path` is a safe relative path of an allowed kind."""
    limits = limits or FileLimits()
    if not isinstance(path, str) or path == "":
        raise UnsafeOutputError("InvalidPath", f"a path must be a non-empty string: {path!r}")
    if len(path) > limits.max_path_length:
        raise UnsafeOutputError(
            "InvalidPath",
            f"the path {path[:60]!r}... is longer than {limits.max_path_length} characters",
        )
    bad = _bad_char(path)
    if bad is not None:
        raise UnsafeOutputError(
            "InvalidPath", f"the path {path!r} contains the control character {bad!r}"
        )
    segments = re.split(r"[/\\]", path)
    if ".." in segments:
        raise UnsafeOutputError(
            "PathTraversal", f"the path {path!r} has a '..' segment that leaves the app"
        )
    if path.startswith(("/", "\\")) or _DRIVE.match(path):
        raise UnsafeOutputError(
            "AbsolutePath", f"the path {path!r} is absolute; paths are relative to the app"
        )
    if "\\" in path:
        raise UnsafeOutputError(
            "InvalidPath", f"the path {path!r} contains a backslash; use '/' between folders"
        )
    if path.startswith("~"):
        raise UnsafeOutputError(
            "InvalidPath", f"the path {path!r} starts with '~'; paths are relative to the app"
        )
    if len(segments) > limits.max_depth:
        raise UnsafeOutputError(
            "InvalidPath", f"the path {path!r} is deeper than {limits.max_depth} levels"
        )
    for segment in segments:
        if segment == "":
            raise UnsafeOutputError("InvalidPath", f"the path {path!r} has an empty segment")
        if segment.startswith("."):
            raise UnsafeOutputError(
                "InvalidPath", f"the path {path!r} has a hidden or '.' segment {segment!r}"
            )
        if _SEGMENT.fullmatch(segment) is None:
            raise UnsafeOutputError(
                "InvalidPath",
                f"the path {path!r} has the segment {segment!r}; use ASCII letters, digits "
                "and '._-+@', starting with a letter, digit or '_'",
            )
    name = segments[-1]
    ext = name.rpartition(".")[2].lower() if "." in name else ""
    if ext not in limits.allowed_extensions:
        kinds = ", ".join(sorted(limits.allowed_extensions))
        raise UnsafeOutputError(
            "DisallowedFileKind",
            f"the file {path!r} is not of an allowed kind; allowed extensions: {kinds}",
        )


def _text_size(content: str | bytes, path: str, limits: FileLimits) -> int:
    """The UTF-8 size of `content`, refusing oversized and binary content early."""
    if not isinstance(content, str | bytes):
        raise UnsafeOutputError(
            "DisallowedFileKind", f"the content of {path!r} is neither text nor bytes"
        )
    # A character is at least one byte, so the length alone refuses huge files without
    # encoding them.
    if len(content) > limits.max_file_bytes:
        raise UnsafeOutputError(
            "FileTooLarge",
            f"the file {path!r} is larger than {limits.max_file_bytes} bytes",
        )
    if isinstance(content, str):
        try:
            data = content.encode("utf-8")
        except UnicodeEncodeError:
            raise UnsafeOutputError(
                "DisallowedFileKind", f"the file {path!r} is not valid Unicode text"
            ) from None
    else:
        data = content
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            raise UnsafeOutputError(
                "DisallowedFileKind", f"the file {path!r} is binary, not UTF-8 text"
            ) from None
    if len(data) > limits.max_file_bytes:
        raise UnsafeOutputError(
            "FileTooLarge",
            f"the file {path!r} is {len(data)} bytes, more than {limits.max_file_bytes}",
        )
    if b"\x00" in data:
        raise UnsafeOutputError(
            "DisallowedFileKind", f"the file {path!r} contains NUL bytes: binary content"
        )
    return len(data)


def check_files(files: Mapping[str, str | bytes], limits: FileLimits | None = None) -> None:
    """Raise `UnsafeOutputError` unless `files` (path -> content) is a safe bundle."""
    limits = limits or FileLimits()
    if len(files) > limits.max_files:
        raise UnsafeOutputError(
            "TooManyFiles", f"{len(files)} files, more than the limit of {limits.max_files}"
        )
    for path in files:
        if not isinstance(path, str):
            raise UnsafeOutputError("InvalidPath", f"a path must be a string: {path!r}")
    paths = sorted(files)
    for path in paths:
        check_path(path, limits)
    # Case-insensitive file systems and URLs would merge these into one file.
    folded: dict[str, str] = {}
    for path in paths:
        other = folded.setdefault(path.lower(), path)
        if other != path:
            raise UnsafeOutputError(
                "DuplicatePath", f"the paths {other!r} and {path!r} differ only in case"
            )
    # A path cannot be both a file and a folder of another file.
    for path in paths:
        segments = path.split("/")
        for depth in range(1, len(segments)):
            folder = "/".join(segments[:depth])
            if folder in files:
                raise UnsafeOutputError(
                    "PathConflict", f"{folder!r} is a file and also a folder of {path!r}"
                )
    total = 0
    for path in paths:
        total += _text_size(files[path], path, limits)
        if total > limits.max_total_bytes:
            raise UnsafeOutputError(
                "BundleTooLarge",
                f"the files add up to more than {limits.max_total_bytes} bytes",
            )
