"""The generator: prompts (and the previous files) in, an answer in the output format out."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from vibeplane.generation.format import (
    Action,
    Edit,
    OutputFormatError,
    WholeFile,
    read_messages,
    render_output,
)
from vibeplane_modelserver.builtin.edits import edit_actions
from vibeplane_modelserver.builtin.prompts import run_prompts
from vibeplane_modelserver.builtin.render import read_spec, render_app
from vibeplane_modelserver.builtin.spec import BuiltinResult


def _answer(
    actions: Sequence[Action], message: str, files: Mapping[str, str] | None = None
) -> BuiltinResult:
    message = message.strip()
    try:
        text = render_output(actions, message)
    except OutputFormatError:
        # Edits quoting previous content the format cannot carry: send whole files instead.
        files = files or {}
        text = render_output(
            [WholeFile(a.path, files[a.path]) if isinstance(a, Edit) else a for a in actions],
            message,
        )
    return BuiltinResult(text=text, message=message)


def generate(prompts: Sequence[str], previous_files: Mapping[str, str] | None) -> BuiltinResult:
    """The answer to `prompts` (in order; the last is the newest) given the previous revision.

    With previous files written by this generator, only the last prompt is applied to the app
    they hold, and a prompt it cannot do gets a plain answer without files. Otherwise all
    prompts are replayed from scratch; one it cannot do is skipped with a note, except the
    last when there are previous files to keep.
    """
    previous = dict(previous_files or {})
    if not prompts:
        return _answer([], "There is no request to work on.")
    base = read_spec(previous) if previous else None
    if base is not None:
        spec, notes, refusal = run_prompts(base, prompts[-1:], atomic_last=True)
    else:
        spec, notes, refusal = run_prompts(
            None, prompts, atomic_last=bool(previous) or len(prompts) == 1
        )
    if refusal is not None:
        return _answer([], refusal)
    if spec is None:
        return _answer([], "\n".join(notes) or "There is no request I can work on.")
    if base is not None and spec == base:
        return _answer([], "The app already is that way; nothing needed to change.")
    files = render_app(spec)
    if previous and base is None:
        notes.append("The previous files were not written by me, so I rewrote the app's files.")
    if spec.kind != "landing" and (base is None or base.kind != spec.kind):
        notes.append("Data is saved in the browser's localStorage.")
    return _answer(edit_actions(previous, files), " ".join(notes), files)


def generate_from_messages(messages: Sequence[Mapping[str, object]]) -> BuiltinResult:
    """`generate` behind the chat API: reads prompts and files from `build_messages` output."""
    try:
        prompts, files = read_messages(messages)
    except OutputFormatError as e:
        return _answer([], f"I could not read the request: {e.message}")
    return generate(prompts, files)
