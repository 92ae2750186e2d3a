"""The question the LLM is asked and the shape of its answer.

One request lists its texts under short ids ("t1".."tN"); the answer is a list of
{id, domain, confidence} matched back by id (`_answers`). The system prompt is the static part
(task, one compact line per domain, the answer format said once, and the few-shot examples when
they are static) and comes first, so servers that reuse an evaluated prompt prefix (llama.cpp,
vLLM prefix caching) evaluate it once; the user prompt holds what changes per request (dynamic
few-shot, the texts, and on a follow-up a line saying which attempt it is, so a follow-up is
never the prompt that was just answered).

The output type (`answer_type`) constrains `domain` to the taxonomy ids and `id` to the batch's
short ids (`Literal`s built at run time, one type per batch size), so grammar-constrained
servers cannot even produce another; its schema also asks for exactly N items.

Bump `PROMPT_VERSION` whenever the prompts or the answer schema change: it is part of
`LabelerAgent.version` and of every cache key, so old answers are not reused for a different
question.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, Field, create_model

from esk_pipeline.pipeline.labeler.models import Confidence
from esk_pipeline.pipeline.taxonomy import Taxonomy

PROMPT_VERSION = "labeler-prompt-v2"


def short_ids(size: int) -> list[str]:
    """The ids a batch of `size` texts is listed under: t1..t<size>."""
    return [f"t{i}" for i in range(1, size + 1)]


def answer_type(domain_ids: Sequence[str], size: int) -> type[BaseModel]:
    """The LLM's output type for a batch of `size`: ``{"items": [{"id", "domain",
    "confidence"}]}`` with `id` restricted to t1..t<size> and `domain` to the taxonomy's ids."""
    short_id = Literal[tuple(short_ids(size))]  # type: ignore[valid-type]
    domain_id = Literal[tuple(domain_ids)]  # type: ignore[valid-type]
    item = create_model(
        "LabeledText",
        id=(short_id, Field(description="the text's id")),
        domain=(domain_id, Field(description="the one domain id that fits best")),
        confidence=(Confidence, Field(description="probability the domain is right, 0..1")),
    )
    # Exactly `size` items in the schema (a grammar-constraining server writes no more and no
    # fewer), but not in validation: a short answer is matched as it is and the rest re-asked.
    length = Field(json_schema_extra={"minItems": size, "maxItems": size})
    return create_model("LabeledBatch", items=(list[item], length))  # type: ignore[valid-type]


def system_prompt(taxonomy: Taxonomy, examples: Sequence[tuple[str, str]]) -> str:
    """The static part of every request: task, domains, static examples, the answer format."""
    lines = [
        "Classify each request sent to a public-service contact centre into one domain.",
        "Domains (id: name. description):",
        *(f"{d.id}: {d.name}. {d.description}" for d in taxonomy.domains),
    ]
    if taxonomy.other_id:
        lines.append(f"Use {taxonomy.other_id} for anything that fits no other domain.")
    if examples:
        lines += ["", "Labelled examples:", *(example_line(t, d) for t, d in examples)]
    lines += [
        "",
        'Answer with JSON only: {"items": [{"id": "t1", "domain": "<domain id>", "confidence":'
        " <0..1, the probability the domain is right>}, ...]}, one item per text id.",
    ]
    return "\n".join(lines)


def user_prompt(texts: dict[str, str], examples: Sequence[tuple[str, str]], attempt: int) -> str:
    """One request's part: its dynamic examples, its texts by short id, the attempt line."""
    parts: list[str] = []
    if examples:
        parts.append("Labelled examples:")
        parts.extend(example_line(text, domain) for text, domain in examples)
        parts.append("")
    parts.append("Texts to classify:")
    parts.extend(
        f"{short_id}: {json.dumps(text, ensure_ascii=False)}" for short_id, text in texts.items()
    )
    if attempt > 1:  # a follow-up: a new question, never the one just answered
        parts.append(
            f"Attempt {attempt}: answer each of {', '.join(texts)} exactly once, with a domain id"
            " from the list."
        )
    return "\n".join(parts)


def example_line(text: str, domain: str) -> str:
    """One labelled example as the prompts show it."""
    return f"- {json.dumps(text, ensure_ascii=False)} -> {domain}"


def question_hash(parts: Sequence[Any]) -> str:
    """sha256 (hex) over JSON-serialisable `parts`: what identifies a question in cache keys
    (and a few-shot example in the per-text cache's entries)."""
    raw = json.dumps(list(parts), ensure_ascii=False, sort_keys=True).encode("utf-8")
    return hashlib.sha256(raw).hexdigest()
