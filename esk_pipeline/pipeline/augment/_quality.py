"""Quality control of synthetic candidates, whatever produced them, cheapest check first.

Each rejection is kept, with its reason, as a `RejectedSample`:
1. ``invalid_domain``: a hard negative naming a domain that is not in the taxonomy or is the
   source's own;
2. ``duplicate``: its normalised form (`identity_key`) equals a real text's, a source's or an
   earlier candidate's;
3. ``too_short`` / ``too_long``: outside the ETL's length bounds (the config's
   ``min_text_length`` / ``max_text_length``), or shorter than 40% of the source, or longer than
   three times the source plus 60 characters (room for a greeting and a filler);
4. ``wrong_language``: its share of Cyrillic letters differs from the source's by more than 0.5
   (a Russian request answered in English, or a text lost to layout noise);
5. ``near_duplicate`` of a real text: character 3-gram Jaccard similarity at or above
   ``near_duplicate_threshold`` (`NearDuplicateIndex`);
6. ``label_mismatch``: the labeler (the local model by default, or the LLM), given all surviving
   candidates in one batch, does not assign the intended domain (for a hard negative: the domain
   it claims). A candidate the labeler could not judge is ``judge_failed`` (its call failed) or
   ``deferred`` (the run's budget was spent), so an outage does not pass for bad samples;
7. ``near_duplicate`` of an accepted synthetic sample, greedily in generation order (after the
   label check, so a rejected text never blocks a good one).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd

from esk_pipeline.pipeline.augment._near_duplicates import NearDuplicateIndex, Sketches
from esk_pipeline.pipeline.augment.models import (
    AugmentedSample,
    AugmenterConfig,
    RejectedSample,
    RejectReason,
    SourceRequest,
)
from esk_pipeline.pipeline.ids import row_id, row_ids
from esk_pipeline.pipeline.taxonomy import Taxonomy
from esk_pipeline.pipeline.text import identity_key

_MIN_LENGTH_RATIO = 0.4
_MAX_LENGTH_RATIO = 3.0
_MAX_LENGTH_SLACK = 60
_MAX_SCRIPT_SHIFT = 0.5
_REAL_BATCH = 20_000  # real texts sketched at once


class Labelled(Protocol):
    """One verdict of a labeler."""

    domain: str | None
    status: str  # "labeled", or "failed"/"deferred" when the labeler could not judge
    error: str | None


class DomainLabeler(Protocol):
    """What quality control needs from a labeler: `LabelerAgent` has it."""

    async def classify_dataframe(self, df: pd.DataFrame) -> Sequence[Labelled]: ...


@dataclass(frozen=True)
class Candidate:
    """A generated text before quality control."""

    text: str
    domain: str  # intended label: the source's, or the hard negative's claimed domain
    source: SourceRequest
    method: str
    model: str
    is_hard_negative: bool = False

    def _provenance(self) -> dict[str, Any]:
        """The fields a sample and a rejection share: the text, its label and where it came
        from."""
        return {
            "text": self.text,
            "domain": self.domain,
            "source_text": self.source.text,
            "source_row_id": self.source.row_id,
            "method": self.method,
            "model": self.model,
        }

    def rejected(self, reason: RejectReason, detail: str = "") -> RejectedSample:
        return RejectedSample(**self._provenance(), reason=reason, detail=detail)

    def accepted(self) -> AugmentedSample:
        return AugmentedSample(
            **self._provenance(), row_id=row_id(self.text), is_hard_negative=self.is_hard_negative
        )


def _cyrillic_share(text: str) -> float | None:
    letters = [ch for ch in text if ch.isalpha()]
    if not letters:
        return None
    return sum("а" <= ch.lower() <= "я" or ch in "ёЁ" for ch in letters) / len(letters)


def _length_reason(text: str, source: str, config: AugmenterConfig) -> RejectReason | None:
    length, source_length = len(text.strip()), len(source.strip())
    if length < max(config.min_text_length, math.ceil(source_length * _MIN_LENGTH_RATIO)):
        return "too_short"
    if length > min(config.max_text_length, source_length * _MAX_LENGTH_RATIO + _MAX_LENGTH_SLACK):
        return "too_long"
    return None


def _language_ok(text: str, source: str) -> bool:
    mine, theirs = _cyrillic_share(text), _cyrillic_share(source)
    if mine is None or theirs is None:
        return mine is None and theirs is None
    return abs(mine - theirs) <= _MAX_SCRIPT_SHIFT


def _cheap_checks(
    candidates: list[Candidate],
    real_forms: set[str],
    taxonomy: Taxonomy,
    config: AugmenterConfig,
    rejected: list[RejectedSample],
) -> list[int]:
    """Checks 1-4 (`real_forms`: the candidates' forms some real text has); returns the
    survivors' positions and appends the rejections to `rejected`."""
    seen = set(real_forms)
    survivors: list[int] = []
    for position, candidate in enumerate(candidates):
        form = identity_key(candidate.text)
        if candidate.is_hard_negative and (
            candidate.domain not in taxonomy or candidate.domain == candidate.source.domain
        ):
            rejected.append(candidate.rejected("invalid_domain", candidate.domain))
        elif form in seen:
            rejected.append(candidate.rejected("duplicate"))
        elif reason := _length_reason(candidate.text, candidate.source.text, config):
            seen.add(form)
            rejected.append(candidate.rejected(reason))
        elif not _language_ok(candidate.text, candidate.source.text):
            seen.add(form)
            rejected.append(candidate.rejected("wrong_language"))
        else:
            seen.add(form)
            survivors.append(position)
    return survivors


def _compare_with_real(
    candidates: list[Candidate], real_texts: Iterable[str], index: NearDuplicateIndex
) -> tuple[set[str], np.ndarray, Sketches]:
    """One pass over `real_texts`, `_REAL_BATCH` at a time: the candidates' forms (identity
    keys) some real text has, each candidate's highest 3-gram Jaccard with a real text (what
    `NearDuplicateIndex.similarity` would give with the real texts indexed), and the
    candidates' sketches. Only the candidates are indexed (in `index`): the memory is the
    candidates' and a batch's, however many real texts there are."""
    sketches = index.sketch([c.text for c in candidates])
    for i in range(len(sketches)):
        index.add(sketches, i)
    forms = {identity_key(c.text) for c in candidates}
    found: set[str] = set()
    nearest = np.zeros(len(candidates))
    texts = iter(real_texts)
    while batch := list(itertools.islice(texts, _REAL_BATCH)):
        keys = [identity_key(t) for t in batch]
        found.update(k for k in keys if k in forms)
        real = index.sketch([t for t, k in zip(batch, keys, strict=True) if k])
        for j in range(len(real)):
            for i, similar in index.matches(real, j):
                nearest[i] = max(nearest[i], similar)
    return found, nearest, sketches


async def quality_control(
    candidates: list[Candidate],
    real_texts: Iterable[str],
    *,
    taxonomy: Taxonomy,
    config: AugmenterConfig,
    labeler: Callable[[], DomainLabeler],
) -> tuple[list[AugmentedSample], list[RejectedSample]]:
    """Checks 1-7 of the module docstring; accepted samples keep the candidates' order.

    `real_texts` are what no sample may duplicate, read once (`_compare_with_real`);
    `labeler` returns the judge, called only when some candidate reaches the label check (so
    a default labeler is built only then).
    """
    rejected: list[RejectedSample] = []
    if not candidates:
        return [], rejected
    threshold = config.near_duplicate_threshold
    real_forms, nearest, sketches = _compare_with_real(
        candidates, real_texts, NearDuplicateIndex(threshold, seed=config.seed)
    )
    checked: list[tuple[int, Candidate]] = []
    for i in _cheap_checks(candidates, real_forms, taxonomy, config, rejected):
        candidate = candidates[i]
        if nearest[i] >= threshold:
            rejected.append(candidate.rejected("near_duplicate", f"real text {nearest[i]:.2f}"))
        else:
            checked.append((i, candidate))

    verdicts = await _judge(labeler, [c.text for _, c in checked])
    synthetic_index = NearDuplicateIndex(threshold, seed=config.seed)
    accepted: list[AugmentedSample] = []
    for (i, candidate), verdict in zip(checked, verdicts, strict=True):
        if verdict.status != "labeled":
            unjudged: RejectReason = "deferred" if verdict.status == "deferred" else "judge_failed"
            rejected.append(candidate.rejected(unjudged, verdict.error or ""))
            continue
        if verdict.domain != candidate.domain:
            rejected.append(candidate.rejected("label_mismatch", f"labelled {verdict.domain}"))
            continue
        similarity = synthetic_index.similarity(sketches, i)
        if similarity >= threshold:
            rejected.append(
                candidate.rejected("near_duplicate", f"synthetic sample {similarity:.2f}")
            )
            continue
        synthetic_index.add(sketches, i)
        accepted.append(candidate.accepted())
    return accepted, rejected


async def _judge(labeler: Callable[[], DomainLabeler], texts: list[str]) -> Sequence[Labelled]:
    """The labeler's verdict on each text, in one batch."""
    if not texts:
        return []
    frame = pd.DataFrame({"row_id": row_ids(texts), "text": texts})
    results = await labeler().classify_dataframe(frame)
    if len(results) != len(texts):
        raise RuntimeError(f"labeler returned {len(results)} results for {len(texts)} texts")
    return results
