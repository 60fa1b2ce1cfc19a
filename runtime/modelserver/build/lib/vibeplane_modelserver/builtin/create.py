"""Creating an app from a first prompt: a list, a form, a landing page or a dashboard."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal

from vibeplane_modelserver.builtin import landing_copy
from vibeplane_modelserver.builtin.fields import (
    LABEL_OK,
    describe_fields,
    make_fields,
    parse_field,
    split_list,
)
from vibeplane_modelserver.builtin.spec import (
    MAX_SECTIONS,
    AppKind,
    AppSpec,
    ChartKind,
    Point,
    Section,
    Tile,
)
from vibeplane_modelserver.builtin.words import (
    ARTICLES,
    COLOR_WORDS,
    COLORS,
    capitalise,
    clean_name,
    collapse,
    norm_label,
    same_name,
    slug,
    titlecase,
)

_POLITE: Final = (
    r"^(?:(?:please|pls|now|ok(?:ay)?|so|hey|hi|hello|also|and|then|actually|instead)\b[\s,]*)*"
    r"(?:(?:can|could|would|will)\s+you\s+(?:please\s+)?|"
    r"i(?:'d|\s+would)?\s+(?:like|want|need)\s+(?:you\s+to\s+|to\s+(?:have|get|see|build)\s+)?|"
    r"let'?s\s+|go ahead and\s+|help me\s+|i'm looking for\s+)?"
)
FOLLOW_LEAD: Final = re.compile(_POLITE + r"(?:(?:please|also)\s+)*", re.I)
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
LANGUAGE: Final = re.compile(
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


def _profile(business: str) -> landing_copy.Profile:
    for pattern, profile in landing_copy.PROFILES:
        if re.search(rf"\b(?:{pattern})", business, re.I):
            return profile
    return landing_copy.DEFAULT_PROFILE


def _strip_lead(text: str) -> str:
    text = _LEAD.sub("", collapse(text), count=1)
    text = re.sub(r"\s+instead$", "", text, flags=re.I)
    text = ARTICLES.sub("", text)
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
        if m is not None and re.search(r"\w", clean_name(m.group(1))):
            return m
    return None


def _named(text: str, quoted: bool = False) -> str | None:
    """The name a prompt gives ("called Bean There"); with `quoted`, any quoted text too."""
    m = _name_match(text, quoted)
    if m is None:
        return None
    name = clean_name(m.group(1))
    return titlecase(name) if name.islower() else name


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
    m = re.search(rf"\b({COLOR_WORDS})\s*(?:accent|colou?r|theme|scheme|buttons?|look)\b", lower)
    if m:
        return _Style(accent=COLORS[m.group(1)])
    m = re.search(r"\b(bar|column|line|pie|donut|doughnut)\s*(?:charts?|graphs?)\b", lower)
    if m:
        return _Style(chart=chart_kind(m.group(1)))
    return None


def chart_kind(word: str) -> ChartKind:
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
    return f"vibeplane.{kind}.{slug(title, '-')}"


def _split_with(text: str) -> tuple[str, str]:
    parts = _WITH.split(text, maxsplit=1)
    return parts[0].strip(), parts[1].strip() if len(parts) > 1 else ""


def _pieces(text: str) -> tuple[list[str], list[_Style]]:
    """Items of a "with ..." list, and the styles among them."""
    items: list[str] = []
    styles: list[_Style] = []
    for piece in split_list(text):
        style = _style_of(piece)
        if style is not None:
            styles.append(style)
        else:
            items.append(piece)
    return items, styles


def create_app(clause: str) -> tuple[AppSpec, str] | str | None:
    """(spec, note) for a prompt that asks for a new app, a refusal, or None."""
    tech = LANGUAGE.search(clause)
    if tech is not None:
        return (
            f"I can't build that with {capitalise(tech.group(1))}: I only write static web "
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
    dropped = [clean_name(p) for p in items if parse_field(p) is None]
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
        title = titlecase(m.group(1).strip() + " tracker")
    else:
        core = re.split(r"\s+(?:for|to|that|which|where|so|in|on|of)\s+", head, maxsplit=1)[0]
        core = _ADJECTIVES.sub("", ARTICLES.sub("", core)).strip(" .,:;!?")
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9 '&-]{0,40}", core) or core.lower() in (
            "app",
            "application",
            "list",
        ):
            if not rest:
                return None
            core = "my list"
        title = titlecase(core)
    items, styles = _pieces(rest)
    parsed = [f for f in (parse_field(p) for p in items) if f is not None]
    note = _dropped_note(items)
    if not parsed:
        if rest and items:
            note = " I could not read the fields you listed, so I picked common ones."
        defaults: tuple[str, ...] = ("name", "notes")
        for pattern, labels in _LIST_DEFAULTS:
            if re.search(rf"\b(?:{pattern})", clause, re.I):
                defaults = labels
                break
        parsed = [f for f in (parse_field(label) for label in defaults) if f is not None]
    fields = make_fields(parsed)
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
    return spec, f"Built {title}, a list app with the fields {describe_fields(fields)}.{note}"


def _create_form(clause: str) -> tuple[AppSpec, str] | str | None:
    name = _named(clause)
    head, rest = _split_with(_unnamed(_strip_lead(clause)))
    core = re.split(r"\s+(?:for|to|that|which|where|so|in|on|of)\s+", head, maxsplit=1)[0]
    core = _ADJECTIVES.sub("", ARTICLES.sub("", core)).strip(" .,:;!?")
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9 '&-]{0,40}", core):
        core = "form"
    title = name or titlecase(core)
    defaults: tuple[str, ...] = ("name", "email", "message")
    submit, thanks = "Submit", "Thanks! Your response was saved."
    for pattern, labels, submit_label, thanks_text in _FORM_DEFAULTS:
        if re.search(rf"\b(?:{pattern})", clause, re.I):
            defaults, submit, thanks = labels, submit_label, thanks_text
            break
    items, styles = _pieces(rest)
    parsed = [f for f in (parse_field(p) for p in items) if f is not None]
    note = _dropped_note(items)
    if not parsed:
        parsed = [f for f in (parse_field(label) for label in defaults) if f is not None]
    fields = tuple(
        f.model_copy(update={"required": f.type != "checkbox"}) for f in make_fields(parsed)
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
    return spec, f"Built {title}, a form with the fields {describe_fields(fields)}.{note}"


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
    business = collapse(m.group(1)) if m else ""
    title = name or (titlecase(business) if business else "Welcome")
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
        section = new_section(item, sections)
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


def new_section(name: str, existing: Sequence[Section]) -> Section | None:
    text = norm_label(name)
    text = re.sub(r"^(?:section\s+)?(?:about|on|for|with)\s+", "", text)
    if not LABEL_OK.fullmatch(text) or len(text.split()) > 5:
        return None
    if any(same_name(s.heading, text) or same_name(s.key, text) for s in existing):
        return None
    heading, body, tiles = next(
        (template for word, template in landing_copy.SECTION_TEMPLATES.items() if word in text),
        (titlecase(text), f"More about {text} coming soon.", ()),
    )
    base = slug(heading, "-")
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
        chart = chart_kind(m.group(1).lower())
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
    metric = _ADJECTIVES.sub("", ARTICLES.sub("", collapse(metric))).strip(" .,:;!?")
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9 '&-]{0,40}", metric):
        metric = "value"
    metric_label = titlecase(metric)
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
