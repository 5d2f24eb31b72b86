"""The catalog: the bundled default loads; bad files fail with a readable message."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.catalog import load_catalog
from app.errors import ConfigError


def test_bundled_catalog_has_a_local_model_and_hosted_ones() -> None:
    catalog = load_catalog()
    local = [m for m in catalog.models if m.local]
    assert local and local[0].launch is not None and local[0].api_key_env is None
    hosted = [m for m in catalog.models if not m.local]
    assert {m.adapter for m in hosted} >= {"openai_compat", "anthropic", "gemini"}
    assert all(m.api_key_env for m in hosted)


def test_missing_key_marks_model_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    entry = load_catalog().get("openai/gpt-4o")
    assert entry is not None
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    assert entry.missing_key()
    monkeypatch.setenv("OPENAI_API_KEY", "sk-x")
    assert not entry.missing_key()
    assert entry.endpoint().api_key is not None
    assert "sk-x" not in repr(entry.endpoint())


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("models: [", "not valid YAML"),
        ("models: []", "models"),
        ("models:\n  - id: a\n    adapter: nope\n    base_url: http://x\n"
         "    price: {input_per_mtok: 1, output_per_mtok: 1}\n    context_window: 10\n",
         "unknown adapter 'nope'"),
        ("models:\n  - id: a\n    adapter: openai_compat\n"
         "    price: {input_per_mtok: 1, output_per_mtok: 1}\n    context_window: 10\n",
         "needs base_url"),
        ("models:\n  - id: a\n    adapter: openai_compat\n    base_url: http://x\n"
         "    price: {input_per_mtok: -1, output_per_mtok: 1}\n    context_window: 10\n",
         "models[0] (id 'a').price.input_per_mtok"),
    ],
)  # fmt: skip
def test_bad_catalog_is_refused_readably(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "catalog.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as error:
        load_catalog(path)
    assert expected in error.value.message


def test_unreadable_catalog(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read catalog"):
        load_catalog(tmp_path / "missing.yaml")
