"""Templates and the languages and domain banks they make up, parsed from the template file.

A `Template` is a text with "{slot}" holes (see `slots`), checked against `SLOTS` once at
import, so a typo in the template file fails at once. A `Language` holds the decorations of
one language (greetings, sign-offs, tails, contact lines, follow-ups, ...): everything except
a domain's core text. `RU_BANK` / `RU_DETAIL_BANK` are the Russian template banks by domain id.
"""

from __future__ import annotations

import random
import string
from collections.abc import Sequence
from dataclasses import dataclass

from esk_pipeline.sample_data._data import sample_templates
from esk_pipeline.sample_data._slots import SLOTS

_FORMATTER = string.Formatter()


@dataclass(frozen=True)
class Template:
    """A text with "{slot}" holes, checked against `SLOTS` once at import."""

    text: str
    slots: tuple[str, ...]

    @classmethod
    def parse(cls, text: str) -> Template:
        slots = tuple(name for _, name, _, _ in _FORMATTER.parse(text) if name)
        for name in slots:
            if name.rstrip(string.digits) not in SLOTS:
                raise KeyError(f"template {text!r} uses unknown slot {name!r}")
        return cls(text, slots)

    def render(self, rng: random.Random) -> str:
        if not self.slots:
            return self.text
        return self.text.format_map({s: SLOTS[s.rstrip(string.digits)](rng) for s in self.slots})


def parse_all(texts: Sequence[str]) -> tuple[Template, ...]:
    return tuple(Template.parse(t) for t in texts)


_PLAIN_LANGUAGE_FIELDS = frozenset({"short_texts", "example_frames", "fillers", "connectors"})


@dataclass(frozen=True)
class Language:
    """The decorations of one language: everything except the domain-specific core text.
    `example_frames` are filled with a domain's own examples ({ex}, {ex_l}, {ex2}, {ex2_l},
    {kw}); the plain fields are used verbatim; the rest are slot templates."""

    greetings: tuple[Template, ...]
    sign_offs: tuple[Template, ...]
    intros: tuple[Template, ...]
    tails: tuple[Template, ...]
    details: tuple[Template, ...]
    name_lines: tuple[Template, ...]
    phone_lines: tuple[Template, ...]
    email_lines: tuple[Template, ...]
    document_lines: tuple[Template, ...]
    stories: tuple[Template, ...]
    follow_ups: tuple[Template, ...]
    short_texts: tuple[str, ...]
    example_frames: tuple[str, ...]
    fillers: tuple[str, ...]
    connectors: tuple[str, ...]

    @classmethod
    def build(cls, **fields: tuple[str, ...]) -> Language:
        return cls(
            **{
                name: texts if name in _PLAIN_LANGUAGE_FIELDS else parse_all(texts)
                for name, texts in fields.items()
            }
        )


_DATA = sample_templates()
LANGUAGES: dict[str, Language] = {
    code: Language.build(**fields) for code, fields in _DATA["languages"].items()
}
RU_BANK = {domain: parse_all(texts) for domain, texts in _DATA["ru_templates"].items()}
RU_DETAIL_BANK = {domain: parse_all(texts) for domain, texts in _DATA["ru_details"].items()}
RU_BORDERLINE: tuple[tuple[str, str, str], ...] = _DATA["ru_borderline"]
"""(domain a, domain b, text): wordings that honestly belong to either domain."""
RELATED: dict[str, tuple[str, ...]] = _DATA["related"]
"""Domains whose requests a citizen tends to combine in one message (by template bank id)."""
SPAM: tuple[str, ...] = _DATA["spam"]
EMPTY_TEXTS: tuple[str, ...] = _DATA["empty_texts"]
