"""Pure parts of the model server: builtin token counts, prompt text, S3 key mapping."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

tokens: Any = pytest.importorskip("vibeplane_modelserver.tokens")
storage: Any = pytest.importorskip("vibeplane_modelserver.storage")


@given(st.text())
def test_tokens_partition_the_text(text: str) -> None:
    parts = list(tokens.iter_tokens(text))
    assert "".join(parts) == text
    assert all(parts)
    assert tokens.count_tokens(text) == len(parts)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", []),
        ("hello", ["hello"]),
        ("Hello, world!", ["Hello", ",", " world", "!"]),
        ('<file path="a.js">\n', ["<", "file", " path", "=", '"', "a", ".", "js", '"', ">", "\n"]),
        ("x  \n", ["x", "  \n"]),
        ("  indented_name = 42", ["  indented_name", " =", " 42"]),
    ],
)
def test_token_examples(text: str, expected: list[str]) -> None:
    assert list(tokens.iter_tokens(text)) == expected


def test_prompt_text_joins_roles_and_contents() -> None:
    parts = [{"type": "text", "text": "a "}, {"type": "image_url"}, {"type": "text", "text": "b"}]
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": parts},
    ]
    assert tokens.prompt_text(messages) == "system: Be brief.\nuser: a b\nassistant:"


@pytest.mark.parametrize(
    ("uri", "bucket", "prefix"),
    [
        ("s3://models/coder/v1", "models", "coder/v1"),
        ("s3://models/coder/v1/", "models", "coder/v1/"),
        ("s3://models", "models", ""),
    ],
)
def test_split_s3_uri(uri: str, bucket: str, prefix: str) -> None:
    assert storage.split_s3_uri(uri) == (bucket, prefix)


@pytest.mark.parametrize("uri", ["http://models/x", "s3:///x", "/local/path"])
def test_split_s3_uri_refuses_other_uris(uri: str) -> None:
    with pytest.raises(storage.StorageError):
        storage.split_s3_uri(uri)


def test_object_keys_map_below_the_download_folder() -> None:
    assert str(storage.relative_path("coder/v1/config.json", "coder/v1/")) == "config.json"
    assert str(storage.relative_path("coder/v1/sub/a.bin", "coder/v1/")) == "sub/a.bin"
    for key in ("coder/v1/../../etc/passwd", "coder/v1//abs", "coder/v1/./x", "coder/v1/"):
        with pytest.raises(storage.StorageError):
            storage.relative_path(key, "coder/v1/")
