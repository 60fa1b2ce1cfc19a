"""Prompt text and token counts that need no tokenizer.

The builtin backend has no vocabulary, yet the platform bills and budgets by tokens, so its
counts must be deterministic, documented and in the same ballpark as a real tokenizer's:

- **A token** is a run of word characters (letters, digits, underscore: `\\w+`), or a single
  other non-space character, together with the whitespace before it. Whitespace at the very
  end of a text is one more token. The tokens of a text concatenate back to the text, so the
  builtin backend can stream and truncate along them. On code and prose this lands within
  roughly 20% of BPE tokenizers (which split long words but merge runs of punctuation).
- **The prompt** of a chat request is `prompt_text`: one `role: content` line block per
  message and `assistant:` at the end. The Hugging Face backend feeds exactly this text to
  a model whose tokenizer has no chat template, and the builtin backend counts its prompt
  tokens on it, so both backends agree on what "the prompt" is.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Final

from vibeplane.generation.format import content_text

_TOKEN: Final = re.compile(r"\s*(?:\w+|[^\w\s])|\s+")


def iter_tokens(text: str) -> Iterator[str]:
    """The tokens of `text`, in order; `"".join(iter_tokens(t)) == t` for every string."""
    for match in _TOKEN.finditer(text):
        yield match.group(0)


def count_tokens(text: str) -> int:
    """The number of tokens of `text` (see the module docstring)."""
    return sum(1 for _ in _TOKEN.finditer(text))


def prompt_text(messages: Sequence[Mapping[str, object]]) -> str:
    """The chat as one prompt: `role: content` per message, then `assistant:`.

    The plain join for tokenizers without a chat template; a base model continues after the
    final `assistant:` line.
    """
    parts = [
        f"{message.get('role', 'user')}: {content_text(message.get('content'))}\n"
        for message in messages
    ]
    return "".join(parts) + "assistant:"
