"""Every YAML the project reads refuses anchors and aliases before building anything."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from esk_pipeline.pipeline.plain_yaml import load_plain_yaml
from esk_pipeline.pipeline.taxonomy import Taxonomy, TaxonomyError
from esk_pipeline_tests.bounded import run_bounded


def alias_bomb(levels: int) -> str:
    """The "billion laughs" shape: each level lists the previous one ten times."""
    lines = ['a0: &a0 ["lol"]']
    for level in range(1, levels + 1):
        previous = ", ".join([f"*a{level - 1}"] * 10)
        lines.append(f"a{level}: &a{level} [{previous}]")
    lines.append(f"domains: [{{id: x, name: X, examples: *a{levels}}}]")
    return "\n".join(lines) + "\n"


def test_a_nine_level_alias_bomb_taxonomy_is_refused_quickly_and_small(tmp_path: Path) -> None:
    path = tmp_path / "taxonomy.yaml"
    path.write_text(alias_bomb(9))
    assert len(path.read_bytes()) < 600
    run = run_bounded(
        f"""
        import json
        from esk_pipeline.pipeline.taxonomy import Taxonomy, TaxonomyError
        try:
            Taxonomy.load({str(path)!r})
        except TaxonomyError as exc:
            print(json.dumps({{"error": str(exc)}}))
        """,
        seconds=30,
        memory_mb=700,
    )
    assert run.outcome is not None, run.stderr
    assert "anchor" in run.outcome["error"] and str(path) in run.outcome["error"]


def test_a_single_alias_is_a_taxonomy_error_naming_the_line(tmp_path: Path) -> None:
    path = tmp_path / "taxonomy.yaml"
    path.write_text(
        "domains:\n  - {id: a, name: A, examples: [x]}\n  - {id: b, name: B, examples: *ex}\n"
    )
    with pytest.raises(TaxonomyError, match=r"(?s)alias 'ex' is not allowed.*line 3"):
        Taxonomy.load(path)


def test_plain_yaml_reads_ordinary_documents_like_safe_load() -> None:
    text = "a: [1, two, {b: null}]\nc: 'd'\n"
    assert load_plain_yaml(text) == yaml.safe_load(text)
    with pytest.raises(yaml.YAMLError, match="anchor 'x'"):
        load_plain_yaml("a: &x 1\nb: 2\n")
    with pytest.raises(yaml.constructor.ConstructorError):
        load_plain_yaml("a: !!python/object:os.system {}\n")
