"""Edits: the smallest search/replace actions from the previous files to the new ones."""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence

from vibeplane.generation.format import (
    Action,
    Edit,
    OutputFormatError,
    ParsedOutput,
    SearchReplace,
    WholeFile,
    apply_edit,
    apply_output,
)


def _split_lines(text: str) -> list[str]:
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def _join_lines(lines: Sequence[str]) -> str:
    return "".join(line + "\n" for line in lines)


def _edit_for(path: str, old: str, new: str) -> Action:
    """Search/replace pairs turning `old` into `new`, or the whole file when edits don't pay."""
    a, b = _split_lines(old), _split_lines(new)
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    hunks = [op for op in matcher.get_opcodes() if op[0] != "equal"]
    working = list(a)
    pairs: list[SearchReplace] = []
    # Bottom-up, so the line numbers of the hunks still to do stay valid.
    for _tag, i1, i2, j1, j2 in reversed(hunks):
        for context in range(0, 8):
            s0, s1 = max(0, i1 - context), min(len(working), i2 + context)
            if s0 == s1:
                continue
            search = working[s0:s1]
            replace = working[s0:i1] + b[j1:j2] + working[i2:s1]
            try:
                apply_edit(path, _join_lines(working), _join_lines(search), _join_lines(replace))
            except OutputFormatError:
                continue
            pairs.append(SearchReplace(_join_lines(search), _join_lines(replace)))
            working[s0:s1] = replace
            break
        else:
            return WholeFile(path, new)
    edit = Edit(path, tuple(pairs))
    size = sum(len(p.search) + len(p.replace) for p in pairs)
    try:
        ok = apply_output({path: old}, ParsedOutput((edit,), "")) == {path: new}
    except OutputFormatError:
        ok = False
    return edit if ok and size < len(new) else WholeFile(path, new)


def edit_actions(previous: Mapping[str, str], files: Mapping[str, str]) -> list[Action]:
    actions: list[Action] = []
    for path in sorted(files):
        old = previous.get(path)
        if old == files[path]:
            continue
        actions.append(
            WholeFile(path, files[path]) if old is None else _edit_for(path, old, files[path])
        )
    return actions
