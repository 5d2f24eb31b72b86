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


KINDS = {"knowledge", "maths", "reasoning", "reading", "code", "translation", "assistant"}


def test_hosted_rows_carry_published_kinds_and_a_prior_that_is_their_mean() -> None:
    """The router can tell prompt kinds apart before bootstrap, and the priors are not guesses."""
    rows = [m for m in load_catalog().models if m.profile is not None and m.profile.kinds]
    assert len(rows) >= 5
    for entry in rows:
        assert entry.profile is not None
        kinds = entry.profile.kinds
        assert set(kinds) <= KINDS, entry.id
        mean = sum(kinds.values()) / len(kinds)
        assert abs(entry.profile.prior_quality - mean) <= 0.01, entry.id
        assert entry.profile.good_at and entry.profile.bad_at, entry.id
    by_id = {m.id: m.profile for m in rows}
    gpt, mini, small = (
        by_id["openai/gpt-4o"],
        by_id["openai/gpt-4o-mini"],
        by_id["groq/llama-3.1-8b-instant"],
    )
    assert gpt and mini and small
    assert (
        gpt.kinds["maths"] > mini.kinds["maths"] > small.kinds["maths"]
    )  # MATH 75.9 > 70.2 > 51.9


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


def test_the_readme_catalog_example_is_a_valid_catalog() -> None:
    import re

    import yaml

    from app.catalog import Catalog

    text = (Path(__file__).parents[2] / "README.md").read_text()
    blocks = [yaml.safe_load(b) for b in re.findall(r"```yaml\n(.*?)```", text, flags=re.S)]
    catalogs = [b for b in blocks if isinstance(b, dict) and "models" in b]
    assert catalogs
    for block in catalogs:
        assert Catalog.model_validate(block).models
