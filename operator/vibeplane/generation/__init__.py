"""Generation: what a model answers, how it is checked, and the builtin offline model.

- `format`: the tagged output format (whole files, search/replace edits, deletions), its
  parser, its renderer and the chat request that carries it.
- `checks`: safety checks on a generated file set (paths, kinds, sizes).
- `builtin`: the deterministic generator for air-gapped installs and tests.

Everything here is pure: no I/O, no clock, no randomness.
"""

from vibeplane.generation.checks import FileLimits, UnsafeOutputError, check_files, check_path
from vibeplane.generation.format import (
    Delete,
    Edit,
    OutputFormatError,
    ParsedOutput,
    SearchReplace,
    WholeFile,
    apply_output,
    build_messages,
    parse_output,
    read_messages,
    render_files,
    render_output,
)

__all__ = [
    "Delete",
    "Edit",
    "FileLimits",
    "OutputFormatError",
    "ParsedOutput",
    "SearchReplace",
    "UnsafeOutputError",
    "WholeFile",
    "apply_output",
    "build_messages",
    "check_files",
    "check_path",
    "parse_output",
    "read_messages",
    "render_files",
    "render_output",
]
