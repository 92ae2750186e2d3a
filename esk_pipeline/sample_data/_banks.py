"""Domain banks: what each taxonomy domain's messages are made of, and how often each domain
is written about.

Any taxonomy works: a domain with a Russian template bank (matched by id, used only when the
domain itself is written in Russian) gets those templates plus its taxonomy examples; any
other domain gets texts framed from its examples and description words, with the decorations
of its own language (Russian, English, or none for other scripts). Borderline wordings and
neighbours are limited to domains the taxonomy has, so every label stays a taxonomy id.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from esk_pipeline.pipeline.taxonomy import OTHER_DOMAIN_IDS, Domain, Taxonomy
from esk_pipeline.sample_data._noise import lower_first
from esk_pipeline.sample_data._templates import (
    LANGUAGES,
    RELATED,
    RU_BANK,
    RU_BORDERLINE,
    RU_DETAIL_BANK,
    Language,
    Template,
)

SAMPLE_DOMAIN_WEIGHTS: dict[str, float] = {
    "housing_utilities": 0.23,
    "meter_readings": 0.17,
    "payments": 0.15,
    "transport": 0.08,
    "healthcare": 0.08,
    "documents": 0.07,
    "roads": 0.06,
    "public_order": 0.05,
    "social_benefits": 0.03,
    "education": 0.025,
    "waste": 0.025,
    "other": 0.03,
}
"""Share of messages per domain id, as a contact centre sees them: utilities, meters and
payments dominate; education, waste and benefits are rare (the balancing step's work)."""

_UNLISTED_DOMAIN_WEIGHT = 0.08
"""Weight of the first domain not in `SAMPLE_DOMAIN_WEIGHTS`; the k-th such gets this / (1 + k),
so a foreign taxonomy is imbalanced too (in its own order)."""
_EXAMPLE_SHARE_WITH_TEMPLATES = 0.15
_BORDERLINE_SHARE = 0.15
_CYRILLIC = re.compile(r"[а-яё]", re.IGNORECASE)
_LATIN = re.compile(r"[a-z]", re.IGNORECASE)
_KEYWORD = re.compile(r"[^\W\d_]{5,}")


@dataclass(frozen=True)
class DomainBank:
    """What one taxonomy domain's messages are made of."""

    domain_id: str
    language: Language
    templates: tuple[Template, ...]
    details: tuple[Template, ...]
    examples: tuple[str, ...]
    keywords: tuple[str, ...]
    borderline: tuple[Template, ...]
    neighbours: tuple[int, ...]  # positions in the taxonomy of domains a message may add

    def core(self, rng: random.Random) -> str:
        """The message's own content: a filled template (sometimes one shared with a
        neighbouring domain), or a framed taxonomy example."""
        if self.borderline and rng.random() < _BORDERLINE_SHARE:
            return rng.choice(self.borderline).render(rng)
        if self.templates and (not self.examples or rng.random() > _EXAMPLE_SHARE_WITH_TEMPLATES):
            return rng.choice(self.templates).render(rng)
        example, other = rng.choice(self.examples), rng.choice(self.examples)
        return rng.choice(self.language.example_frames).format(
            ex=example,
            ex_l=lower_first(example),
            ex2=other,
            ex2_l=lower_first(other),
            kw=rng.choice(self.keywords) if self.keywords else example,
        )


def _language_of(domain: Domain) -> str:
    sample = " ".join([domain.name, domain.description, *domain.examples])
    cyrillic, latin = len(_CYRILLIC.findall(sample)), len(_LATIN.findall(sample))
    if cyrillic > latin:
        return "ru"
    return "en" if latin > 0 else "other"


def _description_phrases(domain: Domain) -> tuple[str, ...]:
    """Clauses of the description ("горячая и холодная вода") to stand in for examples."""
    clauses = (c.strip() for c in re.split(r"[.;,:()]", domain.description))
    return tuple(c for c in clauses if len(c.split()) >= 2)


def _bank_id(domain: Domain) -> str | None:
    """The Russian template bank a domain uses, if any (only for a domain written in Russian)."""
    bank_id = "other" if domain.id in OTHER_DOMAIN_IDS else domain.id
    return bank_id if _language_of(domain) == "ru" and bank_id in RU_BANK else None


def domain_banks(taxonomy: Taxonomy) -> list[DomainBank]:
    """One bank per taxonomy domain, in taxonomy order. Borderline templates and neighbours
    are limited to domains this taxonomy has, so every label stays a taxonomy id."""
    bank_ids = [_bank_id(d) for d in taxonomy.domains]
    position = {bank_id: i for i, bank_id in enumerate(bank_ids) if bank_id}
    languages = [_language_of(d) for d in taxonomy.domains]
    banks = []
    for i, domain in enumerate(taxonomy.domains):
        bank_id = bank_ids[i]
        if bank_id:
            borderline = tuple(
                Template.parse(text)
                for a, b, text in RU_BORDERLINE
                if bank_id in (a, b) and {a, b} <= position.keys()
            )
            neighbours = tuple(position[r] for r in RELATED.get(bank_id, ()) if r in position)
        else:
            borderline = ()
            neighbours = tuple(
                j
                for j, other in enumerate(taxonomy.domains)
                if j != i and languages[j] == languages[i] and other.id != taxonomy.other_id
            )
        examples = tuple(domain.examples) or _description_phrases(domain) or (domain.name,)
        keywords = f"{domain.name} {domain.description}"
        banks.append(
            DomainBank(
                domain_id=domain.id,
                language=LANGUAGES[languages[i]],
                templates=RU_BANK[bank_id] if bank_id else (),
                details=RU_DETAIL_BANK.get(bank_id, ()) if bank_id else (),
                examples=examples,
                keywords=tuple(dict.fromkeys(w.lower() for w in _KEYWORD.findall(keywords))),
                borderline=borderline,
                neighbours=neighbours if domain.id != taxonomy.other_id else (),
            )
        )
    return banks


def domain_weights(taxonomy: Taxonomy) -> dict[str, float]:
    """Share of messages per domain of `taxonomy` (sums to 1), in taxonomy order.

    Ids in `SAMPLE_DOMAIN_WEIGHTS` keep their weight (an out-of-scope id takes "other"'s);
    the k-th unlisted id gets `_UNLISTED_DOMAIN_WEIGHT / (1 + k)`.
    """
    raw: dict[str, float] = {}
    unlisted = 0
    for domain in taxonomy.domains:
        key = "other" if domain.id in OTHER_DOMAIN_IDS else domain.id
        if key in SAMPLE_DOMAIN_WEIGHTS:
            raw[domain.id] = SAMPLE_DOMAIN_WEIGHTS[key]
        else:
            raw[domain.id] = _UNLISTED_DOMAIN_WEIGHT / (1 + unlisted)
            unlisted += 1
    total = sum(raw.values())
    return {domain_id: weight / total for domain_id, weight in raw.items()}
