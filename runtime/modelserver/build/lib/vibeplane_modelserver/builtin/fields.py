"""Fields of a list item or a form: their types inferred from their labels, and their
descriptions in the generator's commentary."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Final

from vibeplane_modelserver.builtin.spec import MAX_FIELDS, Field, FieldType
from vibeplane_modelserver.builtin.words import (
    CHECKBOX_WORDS,
    NUMBER_WORDS,
    SELECT_OPTIONS,
    TEXTAREA_WORDS,
    TYPE_ALTERNATION,
    TYPE_WORDS,
    capitalise,
    norm_label,
    same_name,
    slug,
)


def _infer_type(label: str) -> tuple[FieldType, tuple[str, ...]]:
    words = set(re.findall(r"[a-z]+", label.lower()))
    lower = label.lower()
    if words & {"priority", "status"} and len(words) <= 2:
        key = "priority" if "priority" in words else "status"
        return "select", SELECT_OPTIONS[key]
    if lower.startswith(("is ", "has ")) or (words & CHECKBOX_WORDS and len(words) <= 2):
        return "checkbox", ()
    if words & {"date", "due", "deadline", "birthday", "dob", "anniversary", "day"}:
        return "date", ()
    if "time" in words:
        return "time", ()
    if words & {"email", "mail"} or "e-mail" in lower:
        return "email", ()
    if words & {"phone", "telephone", "mobile", "cell"}:
        return "tel", ()
    if words & {"url", "website", "link", "homepage"}:
        return "url", ()
    if words & NUMBER_WORDS:
        return "number", ()
    if words & TEXTAREA_WORDS:
        return "textarea", ()
    return "text", ()


def options_for(label: str) -> tuple[str, ...]:
    words = set(re.findall(r"[a-z]+", label.lower()))
    for word, options in SELECT_OPTIONS.items():
        if word in words:
            return options
    return ("option 1", "option 2", "option 3")


LABEL_OK: Final = re.compile(r"[a-z][a-z0-9 '&/-]{0,39}")


def parse_field(piece: str) -> tuple[str, FieldType, tuple[str, ...]] | None:
    """(label, type, options) of one item of a field list such as "a done checkbox"."""
    text = norm_label(piece)
    text = re.sub(r"\s+(?:for|of|on|to|in)\s+(?:each|every|all|the)\b.*$", "", text)
    hinted: FieldType | None = None
    m = re.fullmatch(rf"(.+?)\s*\((?:as\s+)?(?:a\s+|an\s+)?({TYPE_ALTERNATION})\)", text)
    if m is None:
        m = re.fullmatch(rf"(.+?)\s+as\s+(?:a\s+|an\s+)?({TYPE_ALTERNATION})", text)
    if m is None:
        m = re.fullmatch(
            r"(.+?)\s+(checkbox|check box|tick box|toggle|dropdown|drop-down|text area)", text
        )
    if m is not None:
        text, hinted = m.group(1).strip(), TYPE_WORDS[m.group(2)]
    text = norm_label(text)
    if not LABEL_OK.fullmatch(text) or len(text.split()) > 5:
        return None
    if hinted is None:
        kind, options = _infer_type(text)
    else:
        kind = hinted
        options = options_for(text) if kind == "select" else ()
    return text, kind, options


def split_list(text: str) -> list[str]:
    parts = re.split(r"\s*(?:,|;|\band\b|&|\bplus\b|\bas well as\b)\s*", text)
    return [p for p in (part.strip() for part in parts) if p]


def new_field(label: str, kind: FieldType, options: tuple[str, ...], taken: set[str]) -> Field:
    base = slug(label)
    key, n = base, 2
    while key in taken:
        key, n = f"{base}_{n}", n + 1
    taken.add(key)
    return Field(key=key, label=capitalise(label), type=kind, options=options)


def make_fields(labels: Sequence[tuple[str, FieldType, tuple[str, ...]]]) -> tuple[Field, ...]:
    taken: set[str] = set()
    fields: list[Field] = []
    for label, kind, options in labels:
        if any(same_name(f.label, label) for f in fields) or len(fields) >= MAX_FIELDS:
            continue
        fields.append(new_field(label, kind, options, taken))
    return tuple(fields)


def describe_field(field: Field) -> str:
    kinds: dict[FieldType, str] = {
        "text": "text",
        "textarea": "long text",
        "number": "number",
        "date": "date",
        "time": "time",
        "email": "email",
        "tel": "phone",
        "url": "link",
        "checkbox": "yes/no",
        "select": "one of " + ", ".join(field.options),
    }
    return f"{field.label} ({kinds[field.type]})"


def describe_fields(fields: Sequence[Field]) -> str:
    parts = [describe_field(f) for f in fields] or ["(none)"]
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
