"""The builtin generator: a deterministic, offline "model" for air-gapped installs and tests.

It understands a small set of requests and writes real, working static web apps (index.html,
style.css and app.js in vanilla JavaScript; no CDN, no network; data in localStorage):

- a list app with typed fields ("a todo list with title and due date", "an expense tracker
  with amount, category and date");
- a landing page ("a landing page for a coffee shop called Bean There");
- a form that keeps its responses ("a contact form with name, email and message");
- a dashboard with a bar, line or pie chart drawn in inline SVG ("a sales dashboard with a
  bar chart").

Follow-up prompts change the app: "add a priority field", "rename due date to deadline",
"remove the done field", "make the year field a number", "change the title to Groceries",
"use a dark theme", "make it green", "make it a line chart", "add a testimonials section",
"change the tagline to ...". Anything else, and anything beyond static web apps ("a
distributed database in Rust"), gets a plain answer without files.

The answer is text in the output format of `format.py`, parsed by the operator exactly like a
real model's. The app's state (`AppSpec`) is written as JSON into app.js between marker lines,
so with the previous revision's files the generator reads the state back and applies only the
newest prompt, answering with search/replace edits; without them (or when the files are not
its own) it replays all prompts and writes whole files. The answer is a pure function of the
prompts and the previous files: same input, byte-identical output.
"""

from __future__ import annotations

import difflib
import hashlib
import html
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Literal, TypeAlias, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic import Field as PydanticField

from vibeplane.generation import builtin_assets as assets
from vibeplane.generation.format import (
    Action,
    Edit,
    OutputFormatError,
    ParsedOutput,
    SearchReplace,
    WholeFile,
    apply_edit,
    apply_output,
    read_messages,
    render_output,
)

FieldType: TypeAlias = Literal[
    "text", "textarea", "number", "date", "time", "email", "tel", "url", "checkbox", "select"
]
AppKind: TypeAlias = Literal["list", "form", "landing", "dashboard"]
ChartKind: TypeAlias = Literal["bar", "line", "pie"]

MAX_FIELDS: Final = 16
MAX_SECTIONS: Final = 10
# Bounds the work of the prompt patterns; real requests to this generator are short.
MAX_PROMPT_CHARS: Final = 4000
DEFAULT_ACCENT: Final = "#2563eb"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Field(_Frozen):
    """One field of a list item or a form. `key` is stable across renames, so stored data
    survives them."""

    key: str = PydanticField(pattern=r"^[a-z][a-z0-9_]{0,47}$")
    label: str = PydanticField(min_length=1, max_length=60)
    type: FieldType = "text"
    options: tuple[str, ...] = ()
    required: bool = False


class Tile(_Frozen):
    title: str
    text: str


class Section(_Frozen):
    """A content section of a landing page."""

    key: str = PydanticField(pattern=r"^[a-z][a-z0-9-]{0,47}$")
    heading: str
    body: str
    tiles: tuple[Tile, ...] = ()


class Point(_Frozen):
    label: str
    value: float


class AppSpec(_Frozen):
    """Everything the builtin generator knows about an app; the files are rendered from it."""

    kind: AppKind
    title: str = PydanticField(min_length=1, max_length=80)
    tagline: str = ""
    storage_key: str
    theme: Literal["light", "dark"] = "light"
    accent: str = PydanticField(default=DEFAULT_ACCENT, pattern=r"^#[0-9a-f]{6}$")
    # list and form
    fields: tuple[Field, ...] = ()
    submit_label: str = "Submit"
    thanks: str = "Thanks! Your response was saved."
    # landing
    sections: tuple[Section, ...] = ()
    cta: str = "Get in touch"
    signup: bool = True
    # dashboard
    chart: ChartKind = "bar"
    metric: str = "Value"
    points: tuple[Point, ...] = ()


@dataclass(frozen=True)
class BuiltinResult:
    """The generator's answer: `text` in the output format, and its commentary alone."""

    text: str
    message: str


# ---------------------------------------------------------------------------------------------
# Words


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_SMALL_WORDS: Final = _words("a an and as at by for in of on or the to with")
# Quotes a user may put around names, straight and typographic.
_QUOTE_CHARS: Final = "'\"\u2018\u2019\u201c\u201d"

_ARTICLES: Final = re.compile(
    r"^(?:(?:a|an|the|some|my|our|your|its|their|each|every|another|new|extra|optional|"
    r"separate)\s+)+",
    re.I,
)

_COLORS: Final[dict[str, str]] = {
    "red": "#dc2626",
    "orange": "#ea580c",
    "amber": "#d97706",
    "yellow": "#ca8a04",
    "lime": "#65a30d",
    "green": "#16a34a",
    "emerald": "#059669",
    "teal": "#0d9488",
    "cyan": "#0891b2",
    "blue": "#2563eb",
    "indigo": "#4f46e5",
    "violet": "#7c3aed",
    "purple": "#9333ea",
    "pink": "#db2777",
    "rose": "#e11d48",
    "brown": "#92400e",
    "gray": "#4b5563",
    "grey": "#4b5563",
    "black": "#111827",
}
_COLOR_WORDS: Final = "|".join(_COLORS)

_TYPE_WORDS: Final[dict[str, FieldType]] = {
    "date": "date",
    "number": "number",
    "numeric": "number",
    "checkbox": "checkbox",
    "check box": "checkbox",
    "tick box": "checkbox",
    "toggle": "checkbox",
    "yes/no": "checkbox",
    "boolean": "checkbox",
    "text": "text",
    "textarea": "textarea",
    "text area": "textarea",
    "long text": "textarea",
    "paragraph": "textarea",
    "email": "email",
    "time": "time",
    "url": "url",
    "link": "url",
    "phone": "tel",
    "phone number": "tel",
    "dropdown": "select",
    "drop-down": "select",
    "select": "select",
    "choice": "select",
}
_TYPE_ALTERNATION: Final = "|".join(
    re.escape(w) for w in sorted(_TYPE_WORDS, key=len, reverse=True)
)

_CHECKBOX_WORDS: Final = _words(
    "done completed complete finished paid active archived bought purchased read watched "
    "visited attending enabled available favourite favorite starred approved verified "
    "subscribed packed booked confirmed shipped delivered resolved closed"
)
_NUMBER_WORDS: Final = _words(
    "price amount count quantity qty cost total number age rating score budget salary calories "
    "hours minutes weight height pages year stock balance distance duration size points votes "
    "rank level percent percentage temperature sum fee income reps sets servings guests "
    "capacity"
)
_TEXTAREA_WORDS: Final = _words(
    "message notes note description comment comments body details bio content summary feedback "
    "ingredients steps instructions address review remarks"
)
_SELECT_OPTIONS: Final[dict[str, tuple[str, ...]]] = {
    "priority": ("low", "medium", "high"),
    "status": ("to do", "in progress", "done"),
    "size": ("small", "medium", "large"),
}


def _collapse(text: str) -> str:
    return " ".join(text.split())


def _titlecase(text: str) -> str:
    words = _collapse(text).split(" ")
    out = []
    for i, word in enumerate(words):
        lower = word.lower()
        if i > 0 and lower in _SMALL_WORDS:
            out.append(lower)
        elif word.islower():
            out.append("-".join(part[:1].upper() + part[1:] for part in word.split("-")))
        else:
            out.append(word)
    return " ".join(out)


def _capitalise(text: str) -> str:
    return text[:1].upper() + text[1:]


def _slug(text: str, sep: str = "_") -> str:
    slug = re.sub(r"[^a-z0-9]+", sep, text.lower()).strip(sep)
    if not slug or not slug[0].isalpha():
        slug = "f" + sep + slug if slug else "field"
    return slug[:40].rstrip(sep)


def _clean_text(text: str, limit: int) -> str:
    """User-given text without characters that have a meaning in markup or code."""
    text = re.sub(r"[<>{}\[\]\\\"`|]", "", text)
    return _collapse(text.strip(" .,;:!?" + _QUOTE_CHARS))[:limit].strip()


def _clean_name(text: str) -> str:
    return _clean_text(text, 60)


def _norm_label(text: str) -> str:
    """A field or section name as typed by a user, for comparison."""
    text = _ARTICLES.sub("", _collapse(text.lower()).strip(" .,;:!?" + _QUOTE_CHARS))
    text = re.sub(r"\s+(?:fields?|columns?|inputs?|sections?|properties|property)$", "", text)
    return text.strip()


def _same_name(a: str, b: str) -> bool:
    a, b = _norm_label(a).replace("_", " "), _norm_label(b).replace("_", " ")
    return a == b or a.rstrip("s") == b.rstrip("s")


# ---------------------------------------------------------------------------------------------
# Fields


def _infer_type(label: str) -> tuple[FieldType, tuple[str, ...]]:
    words = set(re.findall(r"[a-z]+", label.lower()))
    lower = label.lower()
    if words & {"priority", "status"} and len(words) <= 2:
        key = "priority" if "priority" in words else "status"
        return "select", _SELECT_OPTIONS[key]
    if lower.startswith(("is ", "has ")) or (words & _CHECKBOX_WORDS and len(words) <= 2):
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
    if words & _NUMBER_WORDS:
        return "number", ()
    if words & _TEXTAREA_WORDS:
        return "textarea", ()
    return "text", ()


def _options_for(label: str) -> tuple[str, ...]:
    words = set(re.findall(r"[a-z]+", label.lower()))
    for word, options in _SELECT_OPTIONS.items():
        if word in words:
            return options
    return ("option 1", "option 2", "option 3")


_LABEL_OK: Final = re.compile(r"[a-z][a-z0-9 '&/-]{0,39}")


def _parse_field(piece: str) -> tuple[str, FieldType, tuple[str, ...]] | None:
    """(label, type, options) of one item of a field list such as "a done checkbox"."""
    text = _norm_label(piece)
    text = re.sub(r"\s+(?:for|of|on|to|in)\s+(?:each|every|all|the)\b.*$", "", text)
    hinted: FieldType | None = None
    m = re.fullmatch(rf"(.+?)\s*\((?:as\s+)?(?:a\s+|an\s+)?({_TYPE_ALTERNATION})\)", text)
    if m is None:
        m = re.fullmatch(rf"(.+?)\s+as\s+(?:a\s+|an\s+)?({_TYPE_ALTERNATION})", text)
    if m is None:
        m = re.fullmatch(
            r"(.+?)\s+(checkbox|check box|tick box|toggle|dropdown|drop-down|text area)", text
        )
    if m is not None:
        text, hinted = m.group(1).strip(), _TYPE_WORDS[m.group(2)]
    text = _norm_label(text)
    if not _LABEL_OK.fullmatch(text) or len(text.split()) > 5:
        return None
    if hinted is None:
        kind, options = _infer_type(text)
    else:
        kind = hinted
        options = _options_for(text) if kind == "select" else ()
    return text, kind, options


def _split_list(text: str) -> list[str]:
    parts = re.split(r"\s*(?:,|;|\band\b|&|\bplus\b|\bas well as\b)\s*", text)
    return [p for p in (part.strip() for part in parts) if p]


def _new_field(label: str, kind: FieldType, options: tuple[str, ...], taken: set[str]) -> Field:
    base = _slug(label)
    key, n = base, 2
    while key in taken:
        key, n = f"{base}_{n}", n + 1
    taken.add(key)
    return Field(key=key, label=_capitalise(label), type=kind, options=options)


def _make_fields(labels: Sequence[tuple[str, FieldType, tuple[str, ...]]]) -> tuple[Field, ...]:
    taken: set[str] = set()
    fields: list[Field] = []
    for label, kind, options in labels:
        if any(_same_name(f.label, label) for f in fields) or len(fields) >= MAX_FIELDS:
            continue
        fields.append(_new_field(label, kind, options, taken))
    return tuple(fields)


def _describe_field(field: Field) -> str:
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


def _describe_fields(fields: Sequence[Field]) -> str:
    parts = [_describe_field(f) for f in fields] or ["(none)"]
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


# ---------------------------------------------------------------------------------------------
# Creating an app from a first prompt


_POLITE: Final = (
    r"^(?:(?:please|pls|now|ok(?:ay)?|so|hey|hi|hello|also|and|then|actually|instead)\b[\s,]*)*"
    r"(?:(?:can|could|would|will)\s+you\s+(?:please\s+)?|"
    r"i(?:'d|\s+would)?\s+(?:like|want|need)\s+(?:you\s+to\s+|to\s+(?:have|get|see|build)\s+)?|"
    r"let'?s\s+|go ahead and\s+|help me\s+|i'm looking for\s+)?"
)
_FOLLOW_LEAD: Final = re.compile(_POLITE + r"(?:(?:please|also)\s+)*", re.I)
_LEAD: Final = re.compile(
    _POLITE + r"(?:(?:make|turn|change|convert)\s+(?:it|this)(?:\s+(?:into|to))?\s+|"
    r"(?:build|create|make|generate|write|design|code|give|set up|put together|draft|start)"
    r"\s+(?:me\s+|us\s+)?(?:instead\s+)?)?",
    re.I,
)
_ADJECTIVES: Final = re.compile(
    r"^(?:(?:simple|small|little|basic|tiny|quick|nice|beautiful|pretty|modern|clean|minimal|"
    r"responsive|cool|static|single[- ]page|one[- ]page|new|web|html)\s+)+",
    re.I,
)
_WITH: Final = re.compile(
    r"\s+(?:with|having|containing|including|that (?:has|have|stores?|tracks?|shows?|includes?"
    r"|asks? for|collects?)|which (?:has|have|stores?|tracks?|shows?)|where (?:each|every) \w+ "
    r"(?:has|have))\s+(?:(?:the\s+)?(?:fields?|columns?|inputs?)\s*:?\s*)?",
    re.I,
)
_LANGUAGE: Final = re.compile(
    r"\b(?:in|using|with|on|written in|built (?:in|with))\s+"
    r"(rust|go|golang|c|c\+\+|c#|java|kotlin|swift|haskell|scala|erlang|elixir|php|ruby|perl|"
    r"fortran|cobol|assembly|zig|dart|flutter|python|django|flask|node(?:\.?js)?|"
    r"react|vue|angular|svelte|next\.?js)(?![\w+#])",
    re.I,
)
_BEYOND: Final = re.compile(
    r"\b(?:distributed|compiler|kernel|operating system|blockchain|smart contracts?|"
    r"cryptocurrency|machine learning|neural network|deep learning|multiplayer|microservices?|"
    r"backend|back-end|server-side|database engine|3d game|video streaming|payment processing|"
    r"mobile app|ios app|android app|desktop app|chatbot|real-time chat|login system|"
    r"authentication)\b",
    re.I,
)
_LANDING: Final = re.compile(
    r"\b(?:landing page|home ?page|website|web site|site|splash page|marketing page|"
    r"one-pager|page (?:for|about))\b",
    re.I,
)
_LANDING_PAGE: Final = re.compile(
    r"\b(?:landing page|home ?page|splash page|marketing page|one-pager)\b", re.I
)
_DASHBOARD: Final = re.compile(
    r"\b(?:dashboard|chart|graph|analytics|kpis?|metrics|report)\b", re.I
)
_FORM: Final = re.compile(
    r"\b(?:form|survey|questionnaire|sign[- ]?up|registration|rsvp|feedback)\b", re.I
)
_LIST: Final = re.compile(
    r"\b(?:list|lists|tracker|track|tracking|manager|manage|log|logger|catalog|catalogue|"
    r"inventory|crud|organi[sz]er|planner|journal|diary|database|collection|registry|keeper|"
    r"checklist|todo|to-do|to do|tasks|app|application)\b",
    re.I,
)

_STRONG_LIST: Final = re.compile(_LIST.pattern.replace("|app|application", ""), re.I)

_LIST_DEFAULTS: Final[list[tuple[str, tuple[str, ...]]]] = [
    (r"todo|to-do|to do|task|chore", ("title", "due date", "done")),
    (r"shopping|grocer", ("item", "quantity", "bought")),
    (r"book|reading", ("title", "author", "read")),
    (r"movie|film|watch", ("title", "year", "watched")),
    (r"expense|spending|budget", ("description", "amount", "date")),
    (r"contact|address book|people|client|customer", ("name", "email", "phone")),
    (r"recipe", ("name", "ingredients", "steps")),
    (r"inventory|stock|product", ("name", "quantity", "price")),
    (r"habit", ("habit", "done")),
    (r"workout|exercise|gym", ("exercise", "date", "reps")),
    (r"bug|issue|ticket", ("title", "status", "priority")),
    (r"note|journal|diary", ("title", "date", "notes")),
]
_FORM_DEFAULTS: Final[list[tuple[str, tuple[str, ...], str, str]]] = [
    (r"contact", ("name", "email", "message"), "Send message", "Thanks! Your message was sent."),
    (
        r"feedback",
        ("name", "email", "rating", "comments"),
        "Send feedback",
        "Thanks for the feedback!",
    ),
    (r"rsvp", ("name", "email", "guests"), "RSVP", "Thanks! Your RSVP was saved."),
    (
        r"sign[- ]?up|registration|register",
        ("name", "email"),
        "Sign up",
        "Thanks! You are signed up.",
    ),
    (r"survey|questionnaire", ("name", "rating", "comments"), "Submit", "Thanks for your answers!"),
    (
        r"order",
        ("name", "email", "quantity", "notes"),
        "Place order",
        "Thanks! Your order was saved.",
    ),
]


def _profile(business: str) -> assets.Profile:
    for pattern, profile in assets.PROFILES:
        if re.search(rf"\b(?:{pattern})", business, re.I):
            return profile
    return assets.DEFAULT_PROFILE


def _strip_lead(text: str) -> str:
    text = _LEAD.sub("", _collapse(text), count=1)
    text = re.sub(r"\s+instead$", "", text, flags=re.I)
    text = _ARTICLES.sub("", text)
    return _ADJECTIVES.sub("", text)


_NAMED: Final = (
    re.compile(r"\s*\b(?:called|named|titled)\s+[\"'\u2018\u201c](.+?)[\"'\u2019\u201d]", re.I),
    re.compile(
        r"\s*\b(?:called|named|titled)\s+(.+?)"
        r"(?=\s+(?:with|that|which|where|for|selling|serving|in|on|to)\b|[,;:]|$)",
        re.I,
    ),
)
_QUOTED: Final = re.compile(r"\s*[\"“]([^\"”]{1,60})[\"”]")


def _name_match(text: str, quoted: bool) -> re.Match[str] | None:
    for pattern in (*_NAMED, _QUOTED) if quoted else _NAMED:
        m = pattern.search(text)
        if m is not None and re.search(r"\w", _clean_name(m.group(1))):
            return m
    return None


def _named(text: str, quoted: bool = False) -> str | None:
    """The name a prompt gives ("called Bean There"); with `quoted`, any quoted text too."""
    m = _name_match(text, quoted)
    if m is None:
        return None
    name = _clean_name(m.group(1))
    return _titlecase(name) if name.islower() else name


def _unnamed(text: str, quoted: bool = False) -> str:
    """`text` without the part that gives the name."""
    m = _name_match(text, quoted)
    return text if m is None else text[: m.start()] + text[m.end() :]


@dataclass(frozen=True)
class _Style:
    theme: Literal["light", "dark"] | None = None
    accent: str | None = None
    chart: ChartKind | None = None


def _style_of(piece: str) -> _Style | None:
    """The style a piece of a "with ..." list asks for, if it is one."""
    lower = piece.lower()
    m = re.search(r"\b(dark|light)\s*(?:mode|theme|background|colou?rs?|look)\b", lower)
    if m:
        return _Style(theme="dark" if m.group(1) == "dark" else "light")
    m = re.search(rf"\b({_COLOR_WORDS})\s*(?:accent|colou?r|theme|scheme|buttons?|look)\b", lower)
    if m:
        return _Style(accent=_COLORS[m.group(1)])
    m = re.search(r"\b(bar|column|line|pie|donut|doughnut)\s*(?:charts?|graphs?)\b", lower)
    if m:
        return _Style(chart=_chart_kind(m.group(1)))
    return None


def _chart_kind(word: str) -> ChartKind:
    return "line" if word == "line" else "pie" if word in ("pie", "donut", "doughnut") else "bar"


def _apply_styles(spec: AppSpec, styles: Sequence[_Style]) -> AppSpec:
    update: dict[str, object] = {}
    for style in styles:
        if style.theme:
            update["theme"] = style.theme
        if style.accent:
            update["accent"] = style.accent
        if style.chart and spec.kind == "dashboard":
            update["chart"] = style.chart
    return spec.model_copy(update=update) if update else spec


def _storage_key(kind: str, title: str) -> str:
    return f"vibeplane.{kind}.{_slug(title, '-')}"


def _split_with(text: str) -> tuple[str, str]:
    parts = _WITH.split(text, maxsplit=1)
    return parts[0].strip(), parts[1].strip() if len(parts) > 1 else ""


def _pieces(text: str) -> tuple[list[str], list[_Style]]:
    """Items of a "with ..." list, and the styles among them."""
    items: list[str] = []
    styles: list[_Style] = []
    for piece in _split_list(text):
        style = _style_of(piece)
        if style is not None:
            styles.append(style)
        else:
            items.append(piece)
    return items, styles


def _create(clause: str) -> tuple[AppSpec, str] | str | None:
    """(spec, note) for a prompt that asks for a new app, a refusal, or None."""
    tech = _LANGUAGE.search(clause)
    if tech is not None:
        return (
            f"I can't build that with {_capitalise(tech.group(1))}: I only write static web "
            "apps in plain HTML, CSS and JavaScript that run in the browser."
        )
    what = _BEYOND.search(clause)
    if what is not None and not _LANDING_PAGE.search(clause):
        return (
            f"Building a {what.group(0).lower()} is beyond me: I write small static web apps "
            "(lists, forms, landing pages and dashboards) that run in the browser."
        )
    # The kind comes from what is asked for, not from the fields listed after "with".
    head = _split_with(_unnamed(_strip_lead(clause), quoted=True))[0]
    kind = _kind_of(head) or _kind_of(clause)
    if kind == "landing":
        return _create_landing(clause)
    if kind == "dashboard":
        return _create_dashboard(clause)
    if kind == "form":
        return _create_form(clause)
    if kind == "list":
        return _create_list(clause)
    return None


def _kind_of(text: str) -> AppKind | None:
    if _LANDING_PAGE.search(text) or (_LANDING.search(text) and not _DASHBOARD.search(text)):
        return "landing"
    if _DASHBOARD.search(text):
        return "dashboard"
    if _FORM.search(text):
        return "form"
    if _LIST.search(text):
        return "list"
    return None


def _dropped_note(items: Sequence[str]) -> str:
    dropped = [_clean_name(p) for p in items if _parse_field(p) is None]
    if not dropped or len(dropped) == len(items):
        return ""
    return f" I left out {', '.join(dropped)}: I could not read that as a field name."


def _create_list(clause: str) -> tuple[AppSpec, str] | str | None:
    name = _named(clause)
    head, rest = _split_with(_unnamed(_strip_lead(clause)))
    m = re.search(
        r"\b(?:to\s+)?(?:track|tracking|manage|log|organi[sz]e|keep track of)\s+"
        r"(?:of\s+)?(?:all\s+)?(?:(?:my|our|the|your)\s+)?([a-z][a-z ]{1,40})",
        head,
        re.I,
    )
    if not name and not rest and not _STRONG_LIST.search(clause):
        return None  # "a chess app": an app, but not one made of items with fields
    if name:
        title = name
    elif m is not None and re.match(
        r"^(?:app|application|tool|page|something|a way|(?:to\s+)?(?:track|manage|log|keep))\b",
        head,
        re.I,
    ):
        title = _titlecase(m.group(1).strip() + " tracker")
    else:
        core = re.split(r"\s+(?:for|to|that|which|where|so|in|on|of)\s+", head, maxsplit=1)[0]
        core = _ADJECTIVES.sub("", _ARTICLES.sub("", core)).strip(" .,:;!?")
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9 '&-]{0,40}", core) or core.lower() in (
            "app",
            "application",
            "list",
        ):
            if not rest:
                return None
            core = "my list"
        title = _titlecase(core)
    items, styles = _pieces(rest)
    parsed = [f for f in (_parse_field(p) for p in items) if f is not None]
    note = _dropped_note(items)
    if not parsed:
        if rest and items:
            note = " I could not read the fields you listed, so I picked common ones."
        defaults: tuple[str, ...] = ("name", "notes")
        for pattern, labels in _LIST_DEFAULTS:
            if re.search(rf"\b(?:{pattern})", clause, re.I):
                defaults = labels
                break
        parsed = [f for f in (_parse_field(label) for label in defaults) if f is not None]
    fields = _make_fields(parsed)
    first = fields[0]
    if first.type not in ("checkbox", "select"):
        fields = (first.model_copy(update={"required": True}), *fields[1:])
    spec = AppSpec(
        kind="list",
        title=title,
        tagline="Add, edit and search your items. Everything stays in this browser.",
        storage_key=_storage_key("list", title),
        fields=fields,
        submit_label="Add",
    )
    spec = _apply_styles(spec, styles)
    return spec, f"Built {title}, a list app with the fields {_describe_fields(fields)}.{note}"


def _create_form(clause: str) -> tuple[AppSpec, str] | str | None:
    name = _named(clause)
    head, rest = _split_with(_unnamed(_strip_lead(clause)))
    core = re.split(r"\s+(?:for|to|that|which|where|so|in|on|of)\s+", head, maxsplit=1)[0]
    core = _ADJECTIVES.sub("", _ARTICLES.sub("", core)).strip(" .,:;!?")
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9 '&-]{0,40}", core):
        core = "form"
    title = name or _titlecase(core)
    defaults: tuple[str, ...] = ("name", "email", "message")
    submit, thanks = "Submit", "Thanks! Your response was saved."
    for pattern, labels, submit_label, thanks_text in _FORM_DEFAULTS:
        if re.search(rf"\b(?:{pattern})", clause, re.I):
            defaults, submit, thanks = labels, submit_label, thanks_text
            break
    items, styles = _pieces(rest)
    parsed = [f for f in (_parse_field(p) for p in items) if f is not None]
    note = _dropped_note(items)
    if not parsed:
        parsed = [f for f in (_parse_field(label) for label in defaults) if f is not None]
    fields = tuple(
        f.model_copy(update={"required": f.type != "checkbox"}) for f in _make_fields(parsed)
    )
    spec = AppSpec(
        kind="form",
        title=title,
        tagline="Fill in the form below. Responses are kept in this browser.",
        storage_key=_storage_key("form", title),
        fields=fields,
        submit_label=submit,
        thanks=thanks,
    )
    spec = _apply_styles(spec, styles)
    return spec, f"Built {title}, a form with the fields {_describe_fields(fields)}.{note}"


def _create_landing(clause: str) -> tuple[AppSpec, str] | str | None:
    text = _strip_lead(clause)
    name = _named(clause)
    head, rest = _split_with(_unnamed(text))
    m = re.search(
        r"\b(?:for|about)\s+(?:(?:a|an|my|our|the|your)\s+)?([a-z][a-z &'-]{1,40}?)"
        r"(?=\s+(?:called|named|titled|that|which|in|on|selling|serving)\b|[,.;!?]|$)",
        head,
        re.I,
    )
    business = _collapse(m.group(1)) if m else ""
    title = name or (_titlecase(business) if business else "Welcome")
    tagline, heading, cta, tiles = _profile(clause)
    if not tagline:
        tagline = f"Welcome to {title}."
    about_what = f"a {business.lower()}" if business else "a small, independent business"
    sections: list[Section] = [
        Section(
            key="offer",
            heading=heading,
            body=f"A taste of what {title} has to offer.",
            tiles=tuple(Tile(title=t, text=d) for t, d in tiles),
        ),
        Section(
            key="about",
            heading="About us",
            body=f"{title} is {about_what} run by people who love what they do. "
            "Come by and say hello.",
        ),
    ]
    items, styles = _pieces(rest)
    for item in items:
        section = _new_section(item, sections)
        if section is not None:
            sections.append(section)
    spec = AppSpec(
        kind="landing",
        title=title,
        tagline=tagline,
        storage_key=_storage_key("signups", title),
        sections=tuple(sections[:MAX_SECTIONS]),
        cta=cta,
    )
    spec = _apply_styles(spec, styles)
    headings = ", ".join(s.heading for s in spec.sections)
    return spec, (
        f"Built a landing page for {title} with the sections {headings} and a sign-up form."
    )


def _new_section(name: str, existing: Sequence[Section]) -> Section | None:
    text = _norm_label(name)
    text = re.sub(r"^(?:section\s+)?(?:about|on|for|with)\s+", "", text)
    if not _LABEL_OK.fullmatch(text) or len(text.split()) > 5:
        return None
    if any(_same_name(s.heading, text) or _same_name(s.key, text) for s in existing):
        return None
    heading, body, tiles = next(
        (template for word, template in assets.SECTION_TEMPLATES.items() if word in text),
        (_titlecase(text), f"More about {text} coming soon.", ()),
    )
    base = _slug(heading, "-")
    key, n = base, 2
    while any(s.key == key for s in existing) or key in ("contact", "offer", "about"):
        key, n = f"{base}-{n}", n + 1
    return Section(
        key=key, heading=heading, body=body, tiles=tuple(Tile(title=t, text=d) for t, d in tiles)
    )


def _sample_points(metric: str) -> tuple[Point, ...]:
    digest = hashlib.sha256(metric.lower().encode()).digest()
    base = 200 + digest[0] * 4
    months = ("Jan", "Feb", "Mar", "Apr", "May", "Jun")
    return tuple(
        Point(label=month, value=float(base + (digest[i + 1] % 60 - 20) * base // 100))
        for i, month in enumerate(months)
    )


def _create_dashboard(clause: str) -> tuple[AppSpec, str] | str | None:
    text = _strip_lead(clause)
    name = _named(clause)
    head, rest = _split_with(_unnamed(text))
    chart: ChartKind = "bar"
    m = re.search(r"\b(bar|column|line|pie|donut|doughnut)\s*(?:charts?|graphs?)\b", clause, re.I)
    if m:
        chart = _chart_kind(m.group(1).lower())
    metric = ""
    m = re.search(
        r"\b(?:of|for|showing|about|on)\s+(?:(?:my|our|the|your)\s+)?([a-z][a-z ]{1,40})$",
        head,
        re.I,
    )
    if m:
        metric = m.group(1)
    else:
        metric = re.sub(
            r"\b(?:(?:bar|column|line|pie|donut|doughnut)\s*)?(?:dashboard|charts?|graphs?|"
            r"analytics|report|kpis?|metrics)\b",
            "",
            head,
            flags=re.I,
        )
    metric = _ADJECTIVES.sub("", _ARTICLES.sub("", _collapse(metric))).strip(" .,:;!?")
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9 '&-]{0,40}", metric):
        metric = "value"
    metric_label = _titlecase(metric)
    if name:
        title = name
    elif re.search(r"\bdashboard\b", head, re.I) or metric == "value":
        title = f"{metric_label} Dashboard" if metric != "value" else "Dashboard"
    else:
        title = metric_label
    _items, styles = _pieces(rest)
    spec = AppSpec(
        kind="dashboard",
        title=title,
        tagline=f"{metric_label} at a glance. Add your own numbers below; they stay in this "
        "browser.",
        storage_key=_storage_key("dashboard", title),
        chart=chart,
        metric=metric_label,
        points=_sample_points(metric),
    )
    spec = _apply_styles(spec, styles)
    return spec, (
        f"Built {title}, a dashboard with a {spec.chart} chart of {metric_label} "
        "(sample data to start with)."
    )


# ---------------------------------------------------------------------------------------------
# Follow-up prompts

_Change: TypeAlias = tuple[AppSpec, str]
_T = TypeVar("_T")


def _replaced(items: tuple[_T, ...], index: int, item: _T) -> tuple[_T, ...]:
    return tuple(item if i == index else old for i, old in enumerate(items))


def _field_index(fields: Sequence[Field], name: str) -> int | None:
    return next(
        (i for i, f in enumerate(fields) if _same_name(f.label, name) or _same_name(f.key, name)),
        None,
    )


def _section_index(sections: Sequence[Section], name: str) -> int | None:
    return next(
        (
            i
            for i, s in enumerate(sections)
            if _same_name(s.heading, name) or _same_name(s.key, name)
        ),
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


def _retitle(spec: AppSpec, raw: str) -> _Change | str:
    title = _clean_name(raw)
    if not re.search(r"\w", title):
        return "I need a title with at least one letter or digit."
    if title.islower():
        title = _titlecase(title)
    return spec.model_copy(update={"title": title}), f"Renamed the app to {title}."


def _follow_up(spec: AppSpec, clause: str) -> _Change | str | None:
    """The change a follow-up clause asks for, a reason it cannot be done, or None."""
    text = _FOLLOW_LEAD.sub("", _collapse(clause), count=1).strip(" .!?")
    if _LANGUAGE.search(text):
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


def _fu_title(spec: AppSpec, text: str) -> _Change | str | None:
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


def _fu_tagline(spec: AppSpec, text: str) -> _Change | str | None:
    m = re.fullmatch(
        r"(?:change|set|update|make)\s+(?:the\s+)?(?:tagline|slogan|subtitle|subheading|"
        r"headline|description)\s+(?:to\s+|into\s+)?(.+)",
        text,
        re.I,
    )
    if m is None:
        return None
    tagline = _clean_text(m.group(1), 140)
    if not tagline:
        return "I need a shorter tagline, with at least one word."
    tagline = _capitalise(tagline)
    if not tagline.endswith((".", "!", "?")):
        tagline += "."
    return spec.model_copy(update={"tagline": tagline}), f"Changed the tagline to “{tagline}”"


def _fu_rename(spec: AppSpec, text: str) -> _Change | str | None:
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
        _norm_label(new) in _TYPE_WORDS or not re.search(r"\b(?:field|column|section)\b", text)
    ):
        return None  # "change X to a date" is a type change; "change the colour to ..." is style
    i = _find_field(spec, old)
    if i is not None and spec.kind in ("list", "form"):
        label = _norm_label(new)
        if not _LABEL_OK.fullmatch(label):
            return f"“{_clean_name(new)}” is not a name I can use for a field."
        field = spec.fields[i]
        other = _find_field(spec, label)
        if other is not None and other != i:
            return f"There is already a field called {spec.fields[other].label}."
        renamed = field.model_copy(update={"label": _capitalise(label)})
        fields = _replaced(spec.fields, i, renamed)
        return (
            spec.model_copy(update={"fields": fields}),
            f"Renamed the field {field.label} to {renamed.label}; saved data keeps its values.",
        )
    j = _find_section(spec, old)
    if j is not None and spec.kind == "landing":
        heading = _clean_name(new)
        if not heading:
            return "I need a section name with at least one letter."
        heading = _capitalise(heading)
        section = spec.sections[j].model_copy(update={"heading": heading})
        sections = _replaced(spec.sections, j, section)
        return (
            spec.model_copy(update={"sections": sections}),
            f"Renamed the section {spec.sections[j].heading} to {heading}.",
        )
    if _APP_WORDS.fullmatch(_collapse(old)) or _same_name(old, spec.title):
        return _retitle(spec, new)
    if spec.kind in ("list", "form"):
        return f"There is no field called “{_clean_name(old)}” to rename."
    if spec.kind == "landing":
        return f"There is no section called “{_clean_name(old)}” to rename."
    return None


def _fu_retype(spec: AppSpec, text: str) -> _Change | str | None:
    m = re.fullmatch(
        rf"(?:make|change|turn|set|convert)\s+(?:the\s+)?(.+?)(?:\s+(?:field|column|input))?\s+"
        rf"(?:into\s+|to\s+)?(?:be\s+)?(?:a\s+|an\s+)?({_TYPE_ALTERNATION})"
        rf"(?:\s+(?:field|input|box|type))?",
        text,
        re.I,
    )
    if m is None or spec.kind not in ("list", "form"):
        return None
    i = _find_field(spec, m.group(1))
    if i is None:
        return None
    kind = _TYPE_WORDS[m.group(2).lower()]
    field = spec.fields[i]
    options = (field.options or _options_for(field.label)) if kind == "select" else ()
    changed = field.model_copy(
        update={"type": kind, "options": options, "required": field.required and kind != "checkbox"}
    )
    fields = _replaced(spec.fields, i, changed)
    return (
        spec.model_copy(update={"fields": fields}),
        f"Changed the field {_describe_field(changed)}.",
    )


def _fu_chart(spec: AppSpec, text: str) -> _Change | str | None:
    m = re.search(r"\b(bar|column|line|pie|donut|doughnut)\s*(?:charts?|graphs?)\b", text, re.I)
    if m is None or not re.match(
        r"(?:make|use|switch|change|turn|show|display|draw|render|convert|i want|give)", text, re.I
    ):
        return None
    if spec.kind != "dashboard":
        return "Charts belong to dashboards; this app is not one."
    chart = _chart_kind(m.group(1).lower())
    return spec.model_copy(update={"chart": chart}), f"Switched the chart to a {chart} chart."


def _fu_theme(spec: AppSpec, text: str) -> _Change | str | None:
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


def _fu_accent(spec: AppSpec, text: str) -> _Change | str | None:
    m = re.search(rf"\b({_COLOR_WORDS})\b", text, re.I)
    if m is None or not re.match(
        r"(?:make|use|switch|turn|change|set|paint|colou?r|give|i want|go)\b", text, re.I
    ):
        return None
    colour = m.group(1).lower()
    return spec.model_copy(update={"accent": _COLORS[colour]}), f"Made the accent colour {colour}."


def _fu_add(spec: AppSpec, text: str) -> _Change | str | None:
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
        for piece in _split_list(rest):
            section = _new_section(piece, sections)
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
    pieces = _split_list(rest)
    parsed = [f for f in (_parse_field(p) for p in pieces) if f is not None]
    if not parsed or len(parsed) != len(pieces):
        return f"I could not read “{_clean_name(rest)}” as field names."
    fields = list(spec.fields)
    taken = {f.key for f in fields}
    added_fields: list[Field] = []
    for label, kind, options in parsed:
        if _find_field(spec, label) is not None or any(_same_name(f.label, label) for f in fields):
            continue
        if len(fields) >= MAX_FIELDS:
            return f"An app can have at most {MAX_FIELDS} fields."
        field = _new_field(label, kind, options, taken)
        if spec.kind == "form":
            field = field.model_copy(update={"required": kind != "checkbox"})
        fields.append(field)
        added_fields.append(field)
    if not added_fields:
        return "The app already has that field."
    plural = "s" if len(added_fields) > 1 else ""
    return (
        spec.model_copy(update={"fields": tuple(fields)}),
        f"Added the field{plural} {_describe_fields(added_fields)}.",
    )


def _fu_remove(spec: AppSpec, text: str) -> _Change | str | None:
    m = re.fullmatch(
        r"(?:remove|delete|drop|get rid of|take out|hide|lose)\s+(?:the\s+)?(.+?)"
        r"(?:\s+(?:fields?|columns?|inputs?|sections?))?(?:\s+from\s+.*)?",
        text,
        re.I,
    )
    if m is None:
        return None
    names = _split_list(m.group(1))
    if spec.kind == "landing":
        sections = list(spec.sections)
        signup = spec.signup
        removed = []
        for name in names:
            if (
                re.fullmatch(
                    r"(?:the\s+)?(?:contact|sign[- ]?up|newsletter)(?:\s+form)?", _norm_label(name)
                )
                and signup
            ):
                signup = False
                removed.append("sign-up form")
                continue
            j = _section_index(sections, name)
            if j is None:
                return f"There is no section called “{_clean_name(name)}”."
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
            return f"There is no field called “{_clean_name(name)}” to remove."
        removed_labels.append(fields.pop(j).label)
    if not fields:
        return "The app needs at least one field; add another before removing the last one."
    plural = "s" if len(removed_labels) > 1 else ""
    return (
        spec.model_copy(update={"fields": tuple(fields)}),
        f"Removed the field{plural} {', '.join(removed_labels)}; saved data keeps its values.",
    )


# ---------------------------------------------------------------------------------------------
# Applying prompts


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
            clause = _collapse(clause).strip(" ,")
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
        result: _Change | str | None = None
        if spec is not None:
            result = _follow_up(spec, clause)
        if result is None:
            result = _create(clause)
        if result is None:
            if spec is None:
                return (
                    f"I don't know how to build “{_clean_name(clause)[:80]}”. I can build lists "
                    "(“a todo list with title and due date”), forms (“a contact form with name, "
                    "email and message”), landing pages (“a landing page for a coffee shop "
                    "called Bean There”) and dashboards (“a sales dashboard with a bar chart”)."
                )
            return (
                f"I don't know how to do “{_clean_name(clause)[:80]}”. I can add, rename or "
                "remove fields and sections, change the title, tagline, theme, colour or chart."
            )
        if isinstance(result, str):
            return result
        spec, note = result
        notes.append(note)
    return spec, notes


def _run(
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


# ---------------------------------------------------------------------------------------------
# Rendering


def _e(text: str) -> str:
    return html.escape(text, quote=True)


def _head(spec: AppSpec) -> list[str]:
    return [
        "<!doctype html>",
        '<html lang="en">',
        "<head>",
        '  <meta charset="utf-8">',
        '  <meta name="viewport" content="width=device-width, initial-scale=1">',
        f"  <title>{_e(spec.title)}</title>",
        '  <link rel="stylesheet" href="style.css">',
        "</head>",
        "<body>",
    ]


_TAIL: Final = ['  <script src="app.js"></script>', "</body>", "</html>"]


def _input_lines(field: Field, indent: str) -> list[str]:
    ident = f"field-{field.key}"
    required = " required" if field.required else ""
    label = f'{indent}  <label for="{ident}">{_e(field.label)}</label>'
    if field.type == "checkbox":
        return [
            f'{indent}<div class="field field-checkbox">',
            f'{indent}  <input id="{ident}" name="{field.key}" type="checkbox">',
            label,
            f"{indent}</div>",
        ]
    lines = [f'{indent}<div class="field">', label]
    if field.type == "textarea":
        lines.append(f'{indent}  <textarea id="{ident}" name="{field.key}"{required}></textarea>')
    elif field.type == "select":
        lines.append(f'{indent}  <select id="{ident}" name="{field.key}"{required}>')
        for option in field.options:
            lines.append(
                f'{indent}    <option value="{_e(option)}">{_e(_capitalise(option))}</option>'
            )
        lines.append(f"{indent}  </select>")
    else:
        extra = ' step="any"' if field.type == "number" else ""
        lines.append(
            f'{indent}  <input id="{ident}" name="{field.key}" type="{field.type}"'
            f"{extra}{required}>"
        )
    lines.append(f"{indent}</div>")
    return lines


def _page_header(spec: AppSpec) -> list[str]:
    return [
        '    <header class="page-header">',
        f"      <h1>{_e(spec.title)}</h1>",
        f'      <p class="tagline">{_e(spec.tagline)}</p>',
        "    </header>",
    ]


def _list_html(spec: AppSpec) -> list[str]:
    lines = ['  <main class="container">', *_page_header(spec)]
    lines += [
        '    <section class="card" aria-labelledby="form-heading">',
        '      <h2 id="form-heading">Add an item</h2>',
        '      <form id="item-form" autocomplete="off">',
    ]
    for field in spec.fields:
        lines += _input_lines(field, "        ")
    lines += [
        '        <div class="actions">',
        '          <button type="submit" id="submit-button">Add</button>',
        '          <button type="button" id="cancel-edit" class="secondary" hidden>Cancel</button>',
        "        </div>",
        "      </form>",
        "    </section>",
        '    <section class="card" aria-labelledby="list-heading">',
        '      <div class="toolbar">',
        '        <h2 id="list-heading">Items</h2>',
        '        <input id="filter" type="search" placeholder="Search" aria-label="Search items">',
        "      </div>",
        '      <p id="empty" class="empty">Nothing here yet. Add the first item above.</p>',
        '      <div class="table-wrap">',
        '        <table id="items">',
        "          <thead>",
        "            <tr>",
    ]
    lines += [f'              <th scope="col">{_e(f.label)}</th>' for f in spec.fields]
    lines += [
        '              <th scope="col"><span class="visually-hidden">Actions</span></th>',
        "            </tr>",
        "          </thead>",
        "          <tbody></tbody>",
        "        </table>",
        "      </div>",
        '      <p id="count" class="count"></p>',
        "    </section>",
        "  </main>",
    ]
    return lines


def _form_html(spec: AppSpec) -> list[str]:
    lines = ['  <main class="container narrow">', *_page_header(spec)]
    lines += ['    <section class="card">', '      <form id="entry-form">']
    for field in spec.fields:
        lines += _input_lines(field, "        ")
    lines += [
        '        <div class="actions">',
        f'          <button type="submit">{_e(spec.submit_label)}</button>',
        "        </div>",
        "      </form>",
        '      <p id="status" class="status" role="status"></p>',
        "    </section>",
        '    <section class="card" aria-labelledby="responses-heading">',
        '      <div class="toolbar">',
        '        <h2 id="responses-heading">Saved responses</h2>',
        '        <button type="button" id="clear" class="secondary" hidden>Clear</button>',
        "      </div>",
        '      <p id="empty" class="empty">No responses yet.</p>',
        '      <ol id="responses" class="responses"></ol>',
        "    </section>",
        "  </main>",
    ]
    return lines


def _landing_html(spec: AppSpec) -> list[str]:
    nav = [(f"#{s.key}", s.heading) for s in spec.sections]
    cta_target = "#contact" if spec.signup else nav[0][0] if nav else "#"
    if spec.signup:
        nav.append(("#contact", "Contact"))
    lines = [
        '  <header class="hero">',
        '    <nav class="nav" aria-label="Main">',
        f'      <span class="brand">{_e(spec.title)}</span>',
        "      <ul>",
    ]
    lines += [f'        <li><a href="{href}">{_e(text)}</a></li>' for href, text in nav]
    lines += [
        "      </ul>",
        "    </nav>",
        '    <div class="hero-body">',
        f"      <h1>{_e(spec.title)}</h1>",
        f'      <p class="tagline">{_e(spec.tagline)}</p>',
        f'      <a class="button" href="{cta_target}">{_e(spec.cta)}</a>',
        "    </div>",
        "  </header>",
        "  <main>",
    ]
    for n, section in enumerate(spec.sections):
        alt = " section-alt" if n % 2 else ""
        lines += [
            f'    <section id="{section.key}" class="section{alt}">',
            '      <div class="container">',
            f"        <h2>{_e(section.heading)}</h2>",
            f"        <p>{_e(section.body)}</p>",
        ]
        if section.tiles:
            lines.append('        <div class="grid">')
            for tile in section.tiles:
                lines.append(
                    f'          <article class="tile"><h3>{_e(tile.title)}</h3>'
                    f"<p>{_e(tile.text)}</p></article>"
                )
            lines.append("        </div>")
        lines += ["      </div>", "    </section>"]
    if spec.signup:
        lines += [
            '    <section id="contact" class="section section-alt">',
            '      <div class="container">',
            "        <h2>Stay in touch</h2>",
            "        <p>Leave your email and we will let you know about news and offers.</p>",
            '        <form id="signup-form" class="signup">',
            '          <label for="signup-email" class="visually-hidden">Email</label>',
            '          <input id="signup-email" name="email" type="email" '
            'placeholder="you@example.com" required>',
            '          <button type="submit">Sign up</button>',
            "        </form>",
            '        <p id="signup-status" class="status" role="status"></p>',
            "      </div>",
            "    </section>",
        ]
    lines += [
        "  </main>",
        '  <footer class="footer">',
        f'    <div class="container">&copy; <span id="year"></span> {_e(spec.title)}</div>',
        "  </footer>",
    ]
    return lines


def _dashboard_html(spec: AppSpec) -> list[str]:
    metric = _e(spec.metric)
    lines = ['  <main class="container">', *_page_header(spec)]
    lines += [
        '    <section class="kpis" aria-label="Key figures">',
        '      <div class="kpi"><span class="kpi-label">Total</span>'
        '<span id="kpi-total" class="kpi-value">-</span></div>',
        '      <div class="kpi"><span class="kpi-label">Average</span>'
        '<span id="kpi-average" class="kpi-value">-</span></div>',
        '      <div class="kpi"><span class="kpi-label">Best period</span>'
        '<span id="kpi-best" class="kpi-value">-</span></div>',
        "    </section>",
        '    <section class="card">',
        f'      <h2 id="chart-heading">{metric} by period</h2>',
        '      <svg id="chart" viewBox="0 0 640 320" role="img" aria-labelledby="chart-heading">'
        "</svg>",
        "    </section>",
        '    <section class="card">',
        "      <h2>Data</h2>",
        '      <form id="point-form" class="point-form">',
        '        <div class="field">',
        '          <label for="point-label">Period</label>',
        '          <input id="point-label" name="label" type="text" required>',
        "        </div>",
        '        <div class="field">',
        f'          <label for="point-value">{metric}</label>',
        '          <input id="point-value" name="value" type="number" step="any" required>',
        "        </div>",
        '        <button type="submit">Add</button>',
        "      </form>",
        '      <div class="table-wrap">',
        '        <table id="points">',
        "          <thead>",
        "            <tr>",
        '              <th scope="col">Period</th>',
        f'              <th scope="col">{metric}</th>',
        '              <th scope="col"><span class="visually-hidden">Actions</span></th>',
        "            </tr>",
        "          </thead>",
        "          <tbody></tbody>",
        "        </table>",
        "      </div>",
        '      <div class="actions">',
        '        <button type="button" id="reset" class="secondary">Reset to sample data</button>',
        "      </div>",
        "    </section>",
        "  </main>",
    ]
    return lines


_BODY = {
    "list": (_list_html, assets.LIST_JS, ""),
    "form": (_form_html, assets.FORM_JS, assets.CSS_FORM),
    "landing": (_landing_html, assets.LANDING_JS, assets.CSS_LANDING),
    "dashboard": (_dashboard_html, assets.DASHBOARD_JS, assets.CSS_DASHBOARD),
}


def _config_js(spec: AppSpec) -> str:
    config = json.dumps(spec.model_dump(mode="json"), indent=2, sort_keys=True, ensure_ascii=True)
    return f"{assets.CONFIG_BEGIN}\nconst APP = {config};\n{assets.CONFIG_END}\n"


def render_app(spec: AppSpec) -> dict[str, str]:
    """The files of the app `spec` describes: index.html, style.css and app.js."""
    body, script, kind_css = _BODY[spec.kind]
    page = [*_head(spec), *body(spec), *_TAIL]
    contrast = "#111827" if spec.accent in (_COLORS["yellow"], _COLORS["lime"]) else "#ffffff"
    palette = assets.CSS_DARK if spec.theme == "dark" else assets.CSS_LIGHT
    css = (
        assets.CSS_HEADER
        + f":root {{\n  --accent: {spec.accent};\n  --accent-contrast: {contrast};\n"
        + palette
        + "}\n\n"
        + assets.CSS_BASE
        + kind_css
    )
    js = assets.JS_HEADER + "\n" + _config_js(spec) + "\n" + script
    return {"app.js": js, "index.html": "\n".join(page) + "\n", "style.css": css}


def read_spec(files: Mapping[str, str]) -> AppSpec | None:
    """The spec written into app.js by this generator, or None for anyone else's files."""
    js = files.get("app.js")
    if not isinstance(js, str):
        return None
    begin = js.find(assets.CONFIG_BEGIN + "\n")
    end = js.find("\n" + assets.CONFIG_END, begin)
    if begin < 0 or end < 0:
        return None
    block = js[begin + len(assets.CONFIG_BEGIN) + 1 : end].strip()
    if not block.startswith("const APP = ") or not block.endswith(";"):
        return None
    try:
        return AppSpec.model_validate_json(block[len("const APP = ") : -1])
    except (ValidationError, ValueError):
        return None


# ---------------------------------------------------------------------------------------------
# Edits


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


def _actions(previous: Mapping[str, str], files: Mapping[str, str]) -> list[Action]:
    actions: list[Action] = []
    for path in sorted(files):
        old = previous.get(path)
        if old == files[path]:
            continue
        actions.append(
            WholeFile(path, files[path]) if old is None else _edit_for(path, old, files[path])
        )
    return actions


# ---------------------------------------------------------------------------------------------
# The generator


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
        spec, notes, refusal = _run(base, prompts[-1:], atomic_last=True)
    else:
        spec, notes, refusal = _run(None, prompts, atomic_last=bool(previous) or len(prompts) == 1)
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
    return _answer(_actions(previous, files), " ".join(notes), files)


def generate_from_messages(messages: Sequence[Mapping[str, object]]) -> BuiltinResult:
    """`generate` behind the chat API: reads prompts and files from `build_messages` output."""
    try:
        prompts, files = read_messages(messages)
    except OutputFormatError as e:
        return _answer([], f"I could not read the request: {e.message}")
    return generate(prompts, files)
