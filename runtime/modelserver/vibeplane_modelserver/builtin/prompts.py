"""Applying prompts: a prompt split into clauses, each creating the app or changing it."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Final

from vibeplane_modelserver.builtin.create import create_app
from vibeplane_modelserver.builtin.follow_up import Change, apply_follow_up
from vibeplane_modelserver.builtin.spec import MAX_PROMPT_CHARS, AppSpec
from vibeplane_modelserver.builtin.words import clean_name, collapse

_PLEASANTRY: Final = re.compile(
    r"(?:(?:thanks?|thank you|great|nice|cool|ok(?:ay)?|perfect|awesome|good|hi|hello|hey|"
    r"please|yes|sure|wow|lovely|excellent|now|so)\b[\s,!.]*)+",
    re.I,
)
_VERBS: Final = (
    r"add|remove|delete|drop|rename|change|make|use|switch|include|also|turn|set|call|put|"
    r"give|track|show|get rid of"
)


def _clauses(prompt: str) -> list[str]:
    text = prompt.replace("\r", "\n")
    parts = re.split(r"(?<!\d)[.!?;]+(?!\d)\s*|\n+|\s+then\s+", text)
    clauses: list[str] = []
    for part in parts:
        for clause in re.split(rf"\s*(?:,\s*and|,|\band)\s+(?=(?:{_VERBS})\b)", part, flags=re.I):
            clause = collapse(clause).strip(" ,")
            if clause and not _PLEASANTRY.fullmatch(clause):
                clauses.append(clause)
    return clauses


def _apply_prompt(spec: AppSpec | None, prompt: str) -> tuple[AppSpec | None, list[str]] | str:
    """The spec after `prompt` and notes on what changed, or why the prompt cannot be done.

    A prompt is applied whole or not at all.
    """
    if len(prompt) > MAX_PROMPT_CHARS:
        return (
            f"That request is longer than the {MAX_PROMPT_CHARS} characters I can read; "
            "please split it into shorter prompts."
        )
    clauses = _clauses(prompt)
    if not clauses:
        return "I did not find a request in that prompt."
    notes: list[str] = []
    for clause in clauses:
        result: Change | str | None = None
        if spec is not None:
            result = apply_follow_up(spec, clause)
        if result is None:
            result = create_app(clause)
        if result is None:
            if spec is None:
                return (
                    f"I don't know how to build “{clean_name(clause)[:80]}”. I can build lists "
                    "(“a todo list with title and due date”), forms (“a contact form with name, "
                    "email and message”), landing pages (“a landing page for a coffee shop "
                    "called Bean There”) and dashboards (“a sales dashboard with a bar chart”)."
                )
            return (
                f"I don't know how to do “{clean_name(clause)[:80]}”. I can add, rename or "
                "remove fields and sections, change the title, tagline, theme, colour or chart."
            )
        if isinstance(result, str):
            return result
        spec, note = result
        notes.append(note)
    return spec, notes


def run_prompts(
    spec: AppSpec | None, prompts: Sequence[str], atomic_last: bool
) -> tuple[AppSpec | None, list[str], str | None]:
    """Apply `prompts` in order: (spec, notes, refusal of the last prompt if `atomic_last`).

    Earlier prompts that cannot be done are skipped with a note, so a replay still builds
    what it can.
    """
    notes: list[str] = []
    for n, prompt in enumerate(prompts):
        outcome = _apply_prompt(spec, prompt)
        if isinstance(outcome, str):
            if atomic_last and n == len(prompts) - 1:
                return spec, notes, outcome
            notes.append(f"Skipped prompt {n + 1}: {outcome}")
            continue
        spec, prompt_notes = outcome
        notes.extend(prompt_notes)
    return spec, notes, None
