"""The template file: shipped with the package, read into tuples, and checked against the slots."""

from __future__ import annotations

import random
import tomllib
from fnmatch import fnmatch
from pathlib import Path

import pytest

from esk_pipeline.sample_data._data import SAMPLE_TEMPLATES_PATH, sample_templates
from esk_pipeline.sample_data._templates import Template

ROOT = Path(__file__).resolve().parents[2]


def test_the_template_file_ships_as_package_data() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = pyproject["tool"]["setuptools"]["package-data"]["esk_pipeline"]
    relative = SAMPLE_TEMPLATES_PATH.relative_to(ROOT / "esk_pipeline").as_posix()
    assert any(fnmatch(relative, pattern) for pattern in patterns), (relative, patterns)


def test_the_template_data_is_read_as_tuples() -> None:
    data = sample_templates()
    assert isinstance(data["ru_templates"]["payments"], tuple)
    assert isinstance(data["streets"][0], tuple)
    assert data["empty_texts"][0] == ""


def test_an_unknown_slot_in_a_template_is_refused() -> None:
    with pytest.raises(KeyError, match="nosuchslot"):
        Template.parse("Адрес: {nosuchslot}")


def test_a_numbered_slot_is_the_same_filler_drawn_again() -> None:
    template = Template.parse("ХВС {reading}, ГВС {reading2}")
    assert template.slots == ("reading", "reading2")
    rendered = template.render(random.Random(3))
    assert "{" not in rendered and rendered.startswith("ХВС ") and ", ГВС " in rendered
