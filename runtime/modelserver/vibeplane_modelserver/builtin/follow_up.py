"""Follow-up prompts: each recognised change ("add a priority field", "use a dark theme",
...) applied to an `AppSpec`."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Final, Literal, TypeAlias, TypeVar

from vibeplane_modelserver.builtin.create import FOLLOW_LEAD, LANGUAGE, chart_kind, new_section
from vibeplane_modelserver.builtin.fields import (
    LABEL_OK,
    describe_field,
    describe_fields,
    new_field,
    options_for,
    parse_field,
    split_list,
)
from vibeplane_modelserver.builtin.spec import MAX_FIELDS, MAX_SECTIONS, AppSpec, Field, Section
from vibeplane_modelserver.builtin.words import (
    COLOR_WORDS,
    COLORS,
    TYPE_ALTERNATION,
    TYPE_WORDS,
    capitalise,
    clean_name,
    clean_text,
    collapse,
    norm_label,
    same_name,
    titlecase,
)

Change: TypeAlias = tuple[AppSpec, str]
_T = TypeVar("_T")


def _replaced(items: tuple[_T, ...], index: int, item: _T) -> tuple[_T, ...]:
    return tuple(item if i == index else old for i, old in enumerate(items))


def _field_index(fields: Sequence[Field], name: str) -> int | None:
    return next(
        (i for i, f in enumerate(fields) if same_name(f.label, name) or same_name(f.key, name)),
        None,
    )


def _section_index(sections: Sequence[Section], name: str) -> int | None:
    return next(
        (i for i, s in enumerate(sections) if same_name(s.heading, name) or same_name(s.key, name)),
        None,
    )


def _find_field(spec: AppSpec, name: str) -> int | None:
    return _field_index(spec.fields, name)


def _find_section(spec: AppSpec, name: str) -> int | None:
    return _section_index(spec.sections, name)


_APP_WORDS: Final = re.compile(
    r"(?:it|this|the (?:whole )?(?:app|page|site|website|list|form|dashboard)|the title|"
    r"(?:the )?(?:app|page|site)(?:'s)? (?:title|name)|title|heading|app|page)",
    re.I,
)


def _retitle(spec: AppSpec, raw: str) -> Change | str:
    title = clean_name(raw)
    if not re.search(r"\w", title):
        return "I need a title with at least one letter or digit."
    if title.islower():
        title = titlecase(title)
    return spec.model_copy(update={"title": title}), f"Renamed the app to {title}."


def apply_follow_up(spec: AppSpec, clause: str) -> Change | str | None:
    """The change a follow-up clause asks for, a reason it cannot be done, or None."""
    text = FOLLOW_LEAD.sub("", collapse(clause), count=1).strip(" .!?")
    if LANGUAGE.search(text):
        return None
    for handler in (
        _fu_title,
        _fu_tagline,
        _fu_rename,
        _fu_retype,
        _fu_chart,
        _fu_theme,
        _fu_accent,
        _fu_add,
        _fu_remove,
    ):
        result = handler(spec, text)
        if result is not None:
            return result
    return None


def _fu_title(spec: AppSpec, text: str) -> Change | str | None:
    m = re.fullmatch(
        r"(?:change|set|update|make)\s+(?:the\s+)?(?:(?:app|page|site|website)(?:'s)?\s+)?"
        r"(?:title|name|heading)(?:\s+of\s+the\s+(?:app|page|site))?\s+(?:to|as|into)\s+(.+)",
        text,
        re.I,
    ) or re.fullmatch(
        r"(?:call|name|title|rename)\s+(?:it|this|the\s+(?:app|page|site|website|list|form|"
        r"dashboard))(?:\s+to)?\s+(.+)",
        text,
        re.I,
    )
    return _retitle(spec, m.group(1)) if m else None


def _fu_tagline(spec: AppSpec, text: str) -> Change | str | None:
    m = re.fullmatch(
        r"(?:change|set|update|make)\s+(?:the\s+)?(?:tagline|slogan|subtitle|subheading|"
        r"headline|description)\s+(?:to\s+|into\s+)?(.+)",
        text,
        re.I,
    )
    if m is None:
        return None
    tagline = clean_text(m.group(1), 140)
    if not tagline:
        return "I need a shorter tagline, with at least one word."
    tagline = capitalise(tagline)
    if not tagline.endswith((".", "!", "?")):
        tagline += "."
    return spec.model_copy(update={"tagline": tagline}), f"Changed the tagline to “{tagline}”"


def _fu_rename(spec: AppSpec, text: str) -> Change | str | None:
    m = re.fullmatch(
        r"(?:rename|relabel|change|call)\s+(?:the\s+)?(.+?)(?:\s+(?:field|column|input|section))?"
        r"\s+(?:to|as|into)\s+(?:a\s+|an\s+|the\s+)?(.+?)(?:\s+(?:field|column|input|section))?",
        text,
        re.I,
    )
    if m is None:
        return None
    old, new = m.group(1), m.group(2)
    if text.lower().startswith("change") and (
        norm_label(new) in TYPE_WORDS or not re.search(r"\b(?:field|column|section)\b", text)
    ):
        return None  # "change X to a date" is a type change; "change the colour to ..." is style
    i = _find_field(spec, old)
    if i is not None and spec.kind in ("list", "form"):
        label = norm_label(new)
        if not LABEL_OK.fullmatch(label):
            return f"“{clean_name(new)}” is not a name I can use for a field."
        field = spec.fields[i]
        other = _find_field(spec, label)
        if other is not None and other != i:
            return f"There is already a field called {spec.fields[other].label}."
        renamed = field.model_copy(update={"label": capitalise(label)})
        fields = _replaced(spec.fields, i, renamed)
        return (
            spec.model_copy(update={"fields": fields}),
            f"Renamed the field {field.label} to {renamed.label}; saved data keeps its values.",
        )
    j = _find_section(spec, old)
    if j is not None and spec.kind == "landing":
        heading = clean_name(new)
        if not heading:
            return "I need a section name with at least one letter."
        heading = capitalise(heading)
        section = spec.sections[j].model_copy(update={"heading": heading})
        sections = _replaced(spec.sections, j, section)
        return (
            spec.model_copy(update={"sections": sections}),
            f"Renamed the section {spec.sections[j].heading} to {heading}.",
        )
    if _APP_WORDS.fullmatch(collapse(old)) or same_name(old, spec.title):
        return _retitle(spec, new)
    if spec.kind in ("list", "form"):
        return f"There is no field called “{clean_name(old)}” to rename."
    if spec.kind == "landing":
        return f"There is no section called “{clean_name(old)}” to rename."
    return None


def _fu_retype(spec: AppSpec, text: str) -> Change | str | None:
    m = re.fullmatch(
        rf"(?:make|change|turn|set|convert)\s+(?:the\s+)?(.+?)(?:\s+(?:field|column|input))?\s+"
        rf"(?:into\s+|to\s+)?(?:be\s+)?(?:a\s+|an\s+)?({TYPE_ALTERNATION})"
        rf"(?:\s+(?:field|input|box|type))?",
        text,
        re.I,
    )
    if m is None or spec.kind not in ("list", "form"):
        return None
    i = _find_field(spec, m.group(1))
    if i is None:
        return None
    kind = TYPE_WORDS[m.group(2).lower()]
    field = spec.fields[i]
    options = (field.options or options_for(field.label)) if kind == "select" else ()
    changed = field.model_copy(
        update={"type": kind, "options": options, "required": field.required and kind != "checkbox"}
    )
    fields = _replaced(spec.fields, i, changed)
    return (
        spec.model_copy(update={"fields": fields}),
        f"Changed the field {describe_field(changed)}.",
    )


def _fu_chart(spec: AppSpec, text: str) -> Change | str | None:
    m = re.search(r"\b(bar|column|line|pie|donut|doughnut)\s*(?:charts?|graphs?)\b", text, re.I)
    if m is None or not re.match(
        r"(?:make|use|switch|change|turn|show|display|draw|render|convert|i want|give)", text, re.I
    ):
        return None
    if spec.kind != "dashboard":
        return "Charts belong to dashboards; this app is not one."
    chart = chart_kind(m.group(1).lower())
    return spec.model_copy(update={"chart": chart}), f"Switched the chart to a {chart} chart."


def _fu_theme(spec: AppSpec, text: str) -> Change | str | None:
    m = re.search(r"\b(dark|light)\b", text, re.I)
    if m is None or not re.match(
        r"(?:make|use|switch|turn|change|enable|add|give|set|apply|i want|go)\b", text, re.I
    ):
        return None
    if not re.search(
        r"\b(?:mode|theme|background|colou?rs?|look|it|everything|page|app)\b", text, re.I
    ):
        return None
    theme: Literal["light", "dark"] = "dark" if m.group(1).lower() == "dark" else "light"
    return spec.model_copy(update={"theme": theme}), f"Switched to a {theme} theme."


def _fu_accent(spec: AppSpec, text: str) -> Change | str | None:
    m = re.search(rf"\b({COLOR_WORDS})\b", text, re.I)
    if m is None or not re.match(
        r"(?:make|use|switch|turn|change|set|paint|colou?r|give|i want|go)\b", text, re.I
    ):
        return None
    colour = m.group(1).lower()
    return spec.model_copy(update={"accent": COLORS[colour]}), f"Made the accent colour {colour}."


def _fu_add(spec: AppSpec, text: str) -> Change | str | None:
    m = re.fullmatch(
        r"(?:add|include|insert|append|put|track|store|record|capture|also track|ask for|collect)"
        r"\s+(.+)",
        text,
        re.I,
    )
    if m is None:
        return None
    rest = re.sub(
        r"\s+(?:to|on|in|for|into)\s+(?:each|every|all|the)\b.*$", "", m.group(1), flags=re.I
    )
    rest = re.sub(
        r"^(?:(?:a|an|the|new|another|some)\s+)*(?:fields?|columns?|inputs?)\s*"
        r"(?:called|named|for)?\s*:?\s*",
        "",
        rest,
        flags=re.I,
    )
    if spec.kind == "landing":
        sections = list(spec.sections)
        added = []
        for piece in split_list(rest):
            section = new_section(piece, sections)
            if section is not None and len(sections) < MAX_SECTIONS:
                sections.append(section)
                added.append(section.heading)
        if not added:
            return "I could not tell which new section to add, or it is already there."
        return spec.model_copy(update={"sections": tuple(sections)}), (
            f"Added the section{'s' if len(added) > 1 else ''} {', '.join(added)}."
        )
    if spec.kind == "dashboard":
        return "I can't add that to a dashboard; add data points with the form on the page."
    pieces = split_list(rest)
    parsed = [f for f in (parse_field(p) for p in pieces) if f is not None]
    if not parsed or len(parsed) != len(pieces):
        return f"I could not read “{clean_name(rest)}” as field names."
    fields = list(spec.fields)
    taken = {f.key for f in fields}
    added_fields: list[Field] = []
    for label, kind, options in parsed:
        if _find_field(spec, label) is not None or any(same_name(f.label, label) for f in fields):
            continue
        if len(fields) >= MAX_FIELDS:
            return f"An app can have at most {MAX_FIELDS} fields."
        field = new_field(label, kind, options, taken)
        if spec.kind == "form":
            field = field.model_copy(update={"required": kind != "checkbox"})
        fields.append(field)
        added_fields.append(field)
    if not added_fields:
        return "The app already has that field."
    plural = "s" if len(added_fields) > 1 else ""
    return (
        spec.model_copy(update={"fields": tuple(fields)}),
        f"Added the field{plural} {describe_fields(added_fields)}.",
    )


def _fu_remove(spec: AppSpec, text: str) -> Change | str | None:
    m = re.fullmatch(
        r"(?:remove|delete|drop|get rid of|take out|hide|lose)\s+(?:the\s+)?(.+?)"
        r"(?:\s+(?:fields?|columns?|inputs?|sections?))?(?:\s+from\s+.*)?",
        text,
        re.I,
    )
    if m is None:
        return None
    names = split_list(m.group(1))
    if spec.kind == "landing":
        sections = list(spec.sections)
        signup = spec.signup
        removed = []
        for name in names:
            if (
                re.fullmatch(
                    r"(?:the\s+)?(?:contact|sign[- ]?up|newsletter)(?:\s+form)?", norm_label(name)
                )
                and signup
            ):
                signup = False
                removed.append("sign-up form")
                continue
            j = _section_index(sections, name)
            if j is None:
                return f"There is no section called “{clean_name(name)}”."
            removed.append(sections.pop(j).heading)
        return (
            spec.model_copy(update={"sections": tuple(sections), "signup": signup}),
            f"Removed {', '.join(removed)}.",
        )
    if spec.kind not in ("list", "form"):
        return None
    fields = list(spec.fields)
    removed_labels = []
    for name in names:
        j = _field_index(fields, name)
        if j is None:
            return f"There is no field called “{clean_name(name)}” to remove."
        removed_labels.append(fields.pop(j).label)
    if not fields:
        return "The app needs at least one field; add another before removing the last one."
    plural = "s" if len(removed_labels) > 1 else ""
    return (
        spec.model_copy(update={"fields": tuple(fields)}),
        f"Removed the field{plural} {', '.join(removed_labels)}; saved data keeps its values.",
    )
