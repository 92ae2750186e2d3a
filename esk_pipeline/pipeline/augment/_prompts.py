"""The LLM prompts: one system prompt per taxonomy and one JSON task per source text.

The answer's schema is `LLMAugmentation` (models.py). Bump `PROMPT_VERSION` whenever a prompt
changes: it is part of the system prompt, so cached answers to the old prompt are not reused.
"""

from __future__ import annotations

import json

from esk_pipeline.pipeline.augment.models import SourceRequest
from esk_pipeline.pipeline.taxonomy import Taxonomy

PROMPT_VERSION = "augmenter-v1"


def system_prompt(taxonomy: Taxonomy) -> str:
    """The task and every domain of `taxonomy` (id, name, description)."""
    domains = "\n".join(f"- {d.id}: {d.name}. {d.description}".rstrip() for d in taxonomy.domains)
    return (
        f"[{PROMPT_VERSION}] You write training data for a classifier of citizens' requests "
        "to a public-service contact centre. Given one request and its domain, write "
        "paraphrases: the same request by other people, in the same language and register "
        "(short, informal, sometimes with typos), keeping every fact that decides the domain; "
        "never copy the request or add new topics. When asked for hard negatives, write "
        "requests that share words or situation with the source but truly belong to a "
        "DIFFERENT domain, and give that domain's id. Domains:\n"
        f"{domains}"
    )


def user_prompt(request: SourceRequest, taxonomy: Taxonomy) -> str:
    """The source text, its domain and how many paraphrases and hard negatives to write."""
    domain = taxonomy.get(request.domain)
    task = {
        "request": request.text,
        "domain": {"id": domain.id, "name": domain.name},
        "paraphrases_wanted": request.n_variants,
        "hard_negatives_wanted": request.n_hard_negatives,
    }
    return json.dumps(task, ensure_ascii=False)
