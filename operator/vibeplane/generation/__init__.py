"""Generation: what a model answers, how it is checked, and how the operator asks for it.

- `format`: the tagged output format (whole files, search/replace edits, deletions), its
  parser, its renderer and the chat request that carries it. The model server's builtin
  generator (`vibeplane_modelserver.builtin`) writes the same format: this module is the
  contract both sides use.
- `checks`: safety checks on a generated file set (paths, kinds, sizes).
- `client`: the HTTP client for OpenAI-compatible chat endpoints (the one module here that
  does I/O).

`format` and `checks` are pure: no I/O, no clock, no randomness.
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
