"""Composing one message's text from its domain bank, row kind and drawn flags.

An ordinary message is [greeting] [name] [intro] core [detail] [second topic] [tail]
[phone/e-mail/document] [sign-off] [name], then transcribed (phone transcripts) or typed with
natural sloppiness and the flagged damage. Other row kinds are empty, very short, spam, or a
multi-paragraph complaint; a follow-up is a contentless chat message in the same session.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence

from esk_pipeline.sample_data._banks import DomainBank
from esk_pipeline.sample_data._noise import damage, lower_first, natural_style, transcribe
from esk_pipeline.sample_data._templates import EMPTY_TEXTS, SPAM, Language, Template


def row_text(
    kind: str,
    bank: DomainBank,
    secondary: DomainBank | None,
    flags: Mapping[str, bool],
    transcript: bool,
    rng: random.Random,
) -> str:
    """The text of one generated row of `kind` (see `draws.ROW_KINDS`)."""
    if kind == "empty":
        return rng.choice(EMPTY_TEXTS)
    if kind == "very_short":
        return rng.choice(bank.language.short_texts)
    if kind == "spam":
        return rng.choice(SPAM)
    if kind == "long":
        return _long_text(bank, rng)
    text = _ordinary_parts(bank, secondary, flags, rng)
    text = transcribe(text, rng, bank.language) if transcript else natural_style(text, rng)
    return damage(text, flags, transcript, rng)


def follow_up(language: Language, transcript: bool, rng: random.Random) -> str:
    """A contentless chat follow-up ("ну что там?"), transcribed or casually typed."""
    text = rng.choice(language.follow_ups).render(rng)
    return transcribe(text, rng, language) if transcript else natural_style(text, rng)


def _optional(templates: Sequence[Template], probability: float, rng: random.Random) -> list[str]:
    if templates and rng.random() < probability:
        return [rng.choice(templates).render(rng)]
    return []


def _ordinary_parts(
    bank: DomainBank, secondary: DomainBank | None, flags: Mapping[str, bool], rng: random.Random
) -> str:
    """A typical message as written: [greeting] [name] [intro] core [detail] [second topic]
    [tail] [phone/e-mail/document] [sign-off] [name]."""
    lang = bank.language
    name_first = flags["name"] and rng.random() < 0.3
    parts: list[str] = []
    if flags["greeting"] and lang.greetings:
        parts.append(rng.choice(lang.greetings).render(rng))
    core = bank.core(rng)
    if name_first:
        parts += _optional(lang.name_lines, 1.0, rng)
    parts += _optional(lang.intros, 0.12, rng)
    parts.append(lower_first(core) if parts and parts[-1].endswith(",") else core)
    parts += _optional(bank.details if rng.random() < 0.7 else lang.details, 0.3, rng)
    if secondary is not None:
        parts += [rng.choice(lang.connectors), lower_first(secondary.core(rng))]
    parts += _optional(lang.tails, 0.35, rng)
    for flag, lines in (
        ("phone", lang.phone_lines),
        ("email", lang.email_lines),
        ("document_number", lang.document_lines),
    ):
        if flags[flag]:
            parts += _optional(lines, 1.0, rng)
    if flags["sign_off"] and lang.sign_offs:
        parts.append(rng.choice(lang.sign_offs).render(rng))
    if flags["name"] and not name_first:
        parts += _optional(lang.name_lines, 1.0, rng)
    return " ".join(parts)


def _long_text(bank: DomainBank, rng: random.Random) -> str:
    """A multi-paragraph complaint of well over 1000 characters."""
    lang = bank.language
    paragraphs = [bank.core(rng)]
    paragraphs += [t.render(rng) for t in rng.sample(bank.details, min(2, len(bank.details)))]
    fillers = [t.render(rng) for t in lang.stories] or list(bank.examples)
    target = 1000 + rng.randint(50, 900)
    order = rng.sample(fillers, len(fillers))
    i = 0
    while sum(len(p) + 2 for p in paragraphs) < target:
        paragraphs.append(order[i % len(order)])
        i += 1
    if lang.greetings:
        paragraphs.insert(0, rng.choice(lang.greetings).render(rng))
    paragraphs += _optional(lang.name_lines, 0.7, rng)
    return "\n\n".join(paragraphs)
