"""What the builtin generator knows about an app (`AppSpec`), from which its files are
rendered, and the generator's answer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal, TypeAlias

from pydantic import BaseModel, ConfigDict
from pydantic import Field as PydanticField

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
