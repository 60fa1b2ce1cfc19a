"""Words of a prompt: the vocabularies the prompt patterns recognise, and how names are cleaned."""

from __future__ import annotations

import re
from typing import Final

from vibeplane_modelserver.builtin.spec import FieldType


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_SMALL_WORDS: Final = _words("a an and as at by for in of on or the to with")
# Quotes a user may put around names, straight and typographic.
_QUOTE_CHARS: Final = "'\"\u2018\u2019\u201c\u201d"

ARTICLES: Final = re.compile(
    r"^(?:(?:a|an|the|some|my|our|your|its|their|each|every|another|new|extra|optional|"
    r"separate)\s+)+",
    re.I,
)

COLORS: Final[dict[str, str]] = {
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
COLOR_WORDS: Final = "|".join(COLORS)

TYPE_WORDS: Final[dict[str, FieldType]] = {
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
TYPE_ALTERNATION: Final = "|".join(re.escape(w) for w in sorted(TYPE_WORDS, key=len, reverse=True))

CHECKBOX_WORDS: Final = _words(
    "done completed complete finished paid active archived bought purchased read watched "
    "visited attending enabled available favourite favorite starred approved verified "
    "subscribed packed booked confirmed shipped delivered resolved closed"
)
NUMBER_WORDS: Final = _words(
    "price amount count quantity qty cost total number age rating score budget salary calories "
    "hours minutes weight height pages year stock balance distance duration size points votes "
    "rank level percent percentage temperature sum fee income reps sets servings guests "
    "capacity"
)
TEXTAREA_WORDS: Final = _words(
    "message notes note description comment comments body details bio content summary feedback "
    "ingredients steps instructions address review remarks"
)
SELECT_OPTIONS: Final[dict[str, tuple[str, ...]]] = {
    "priority": ("low", "medium", "high"),
    "status": ("to do", "in progress", "done"),
    "size": ("small", "medium", "large"),
}


def collapse(text: str) -> str:
    return " ".join(text.split())


def titlecase(text: str) -> str:
    words = collapse(text).split(" ")
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


def capitalise(text: str) -> str:
    return text[:1].upper() + text[1:]


def slug(text: str, sep: str = "_") -> str:
    slug = re.sub(r"[^a-z0-9]+", sep, text.lower()).strip(sep)
    if not slug or not slug[0].isalpha():
        slug = "f" + sep + slug if slug else "field"
    return slug[:40].rstrip(sep)


def clean_text(text: str, limit: int) -> str:
    """User-given text without characters that have a meaning in markup or code."""
    text = re.sub(r"[<>{}\[\]\\\"`|]", "", text)
    return collapse(text.strip(" .,;:!?" + _QUOTE_CHARS))[:limit].strip()


def clean_name(text: str) -> str:
    return clean_text(text, 60)


def norm_label(text: str) -> str:
    """A field or section name as typed by a user, for comparison."""
    text = ARTICLES.sub("", collapse(text.lower()).strip(" .,;:!?" + _QUOTE_CHARS))
    text = re.sub(r"\s+(?:fields?|columns?|inputs?|sections?|properties|property)$", "", text)
    return text.strip()


def same_name(a: str, b: str) -> bool:
    a, b = norm_label(a).replace("_", " "), norm_label(b).replace("_", " ")
    return a == b or a.rstrip("s") == b.rstrip("s")
