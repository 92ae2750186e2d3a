"""Reading an LLM answer back: matching items to texts by short id, and each label's confidence.

Each answer item is checked again after the fact (not every server enforces the schema). A text
is settled when its short id got answers whose domains are all one taxonomy domain (the most
confident answer wins); it is left unsettled, with the reason, when the answer skipped it, gave
only domains outside the taxonomy, or gave conflicting domains. The caller asks again for what
is unsettled.

Confidence: where the endpoint returns token log-probabilities (OpenAI, vLLM and llama.cpp do
for text answers, i.e. the JSON output modes), `llm_token_confidence` is the probability the
model gave the chosen domain id's first tokens: those covering the shortest prefix that tells it
apart from every other taxonomy id (the rest is then forced). `confidence` is that probability
where there is one, else the model's self-reported value; `llm_self_confidence` keeps the
latter. Neither is trusted as it is: the audit calibrates whichever `confidence` holds
(`trust.calibration`). An LLM label's `top_candidates` are its domain with its confidence, then
the local model's other candidates (with the local model's scores) as hints for review.

An answer (`LLMAnswer`: domain, both confidences, model) is the LLM's alone; `llm_outcome` makes
the label from it and the local model's prediction, the same way for a fresh answer and for one
from the per-text cache, so a cached answer meets today's local model, not the one it met.

Agreement: where the token probability is known and the LLM's domain is also the local model's
top prediction, the label `agrees_with_local` (its own calibration tier, `LabelTier`), and its
`confidence` is the geometric mean of the two models' probabilities for that domain. It ranks
labels like their product, i.e. like a product of experts over two models whose errors are
largely independent, so a label both are sure of comes first and one either model doubts comes
last; the root keeps it on the same scale as a single probability (the review thresholds read
it). The token probability alone would ignore the local model's doubt: every text the LLM sees
was below the local accept threshold, but not equally far below it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from pydantic import BaseModel

from esk_pipeline.pipeline.labeler.models import Outcome, Status
from esk_pipeline.pipeline.llm import LLMReply
from esk_pipeline.pipeline.local_model import Prediction
from esk_pipeline.pipeline.taxonomy import Taxonomy

_DOMAIN_VALUE = re.compile(r'"domain"\s*:\s*"')  # where each item's domain id starts


class LLMAnswer(BaseModel):
    """What the LLM itself said about one text: the part of an LLM label that does not depend
    on the local model (what the per-text cache keeps; `llm_outcome` adds the local model's)."""

    domain: str
    self_confidence: float  # the model's self-reported confidence
    token_confidence: float | None  # the domain id's token probability, where known
    model: str


def match_answers(
    short_ids: Mapping[str, str],
    items: Sequence[Any],
    reply: LLMReply[Any],
    taxonomy: Taxonomy,
) -> tuple[dict[str, LLMAnswer], dict[str, str]]:
    """Answers matched back to keys (`short_ids` maps short id -> key): the settled answers,
    and the reason for each key left unsettled."""
    confidences = token_confidences(reply.logprobs, [item.domain for item in items], taxonomy.ids)
    answers: dict[str, list[tuple[Any, float | None]]] = {}
    for item, token_confidence in zip(items, confidences, strict=True):
        answers.setdefault(item.id, []).append((item, token_confidence))
    settled: dict[str, LLMAnswer] = {}
    reasons: dict[str, str] = {}
    for short_id, key in short_ids.items():
        given = answers.get(short_id, [])
        valid = [(a, tc) for a, tc in given if a.domain in taxonomy]
        domains = {a.domain for a, _ in valid}
        if not given:
            reasons[key] = "the model's answer skipped this text"
        elif not valid:
            reasons[key] = f"domain outside the taxonomy: {given[0][0].domain!r}"
        elif len(domains) > 1:
            reasons[key] = f"conflicting answers for one text: {sorted(domains)}"
        else:
            answer, token_confidence = max(valid, key=lambda pair: pair[0].confidence)
            settled[key] = LLMAnswer(
                domain=answer.domain,
                self_confidence=answer.confidence,
                token_confidence=token_confidence,
                model=reply.model,
            )
    return settled, reasons


def llm_outcome(answer: LLMAnswer, prediction: Prediction, *, cached: bool) -> Outcome:
    """The LLM tier's label from its answer and the local model's current `prediction` for
    the text (see the module docstring); `cached`: the answer cost no request."""
    token_confidence = answer.token_confidence
    confidence = token_confidence if token_confidence is not None else answer.self_confidence
    agrees = token_confidence is not None and answer.domain == prediction[0]
    if agrees:
        confidence = math.sqrt(token_confidence * prediction[1])
    hints = [(d, score) for d, score in prediction[2] if d != answer.domain]
    return Outcome(
        domain=answer.domain,
        confidence=confidence,
        top_candidates=[(answer.domain, round(confidence, 4)), *hints][:3],
        label_source=answer.model,
        model=answer.model,
        tier="llm",
        status="labeled",
        cached=cached,
        llm_self_confidence=round(answer.self_confidence, 4),
        llm_token_confidence=token_confidence,
        agrees_with_local=agrees,
    )


def unlabeled_outcomes(
    keys: Iterable[str],
    predictions: Mapping[str, Prediction],
    model: str,
    status: Status,
    reason: str,
) -> dict[str, Outcome]:
    """Failed/deferred outcomes; the local model's candidates stay as hints for review."""
    return {
        key: Outcome(
            domain=None,
            confidence=0.0,
            top_candidates=predictions[key][2],
            label_source=model,
            model=model,
            tier="llm",
            status=status,
            error=reason,
        )
        for key in keys
    }


def _unique_prefix_length(domain: str, domain_ids: Sequence[str]) -> int:
    """Characters of `domain` after which no other id shares its prefix (all of it if none)."""
    others = [d for d in domain_ids if d != domain]
    for length in range(1, len(domain) + 1):
        if not any(other.startswith(domain[:length]) for other in others):
            return length
    return len(domain)


def token_confidences(
    logprobs: Sequence[tuple[str, float]] | None,
    domains: Sequence[str],
    domain_ids: Sequence[str],
) -> list[float | None]:
    """Per answer item (the `domains` in answer order): the probability of the tokens that
    chose its domain id, from the answer text's token logprobs; None where they do not line up
    with the answer (no logprobs, a tool-call answer, an unexpected layout)."""
    unknown: list[float | None] = [None] * len(domains)
    if not logprobs:
        return unknown
    text = "".join(token for token, _ in logprobs)
    starts = [match.end() for match in _DOMAIN_VALUE.finditer(text)]
    if len(starts) != len(domains):
        return unknown
    ends = np.cumsum([len(token) for token, _ in logprobs])
    begins = ends - np.array([len(token) for token, _ in logprobs])
    values = np.array([logprob for _, logprob in logprobs])
    found: list[float | None] = []
    for start, domain in zip(starts, domains, strict=True):
        if text[start : start + len(domain)] != domain:
            found.append(None)
            continue
        stop = start + _unique_prefix_length(domain, domain_ids)
        deciding = (ends > start) & (begins < stop)
        found.append(round(math.exp(float(values[deciding].sum())), 4))
    return found
