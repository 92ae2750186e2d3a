"""Few-shot examples: which labelled examples a request shows, within a token budget.

The pool is the taxonomy's examples plus human-verified labels (a verified label wins over an
example of the same normalised text). Its examples are embedded with the local model's TF-IDF
vectors once, when the pool is built.

- Static (`use_dynamic_fewshot` off): the first example of each domain, in taxonomy order,
  within the budget, placed once in the system prompt.
- Dynamic: per request, the pool examples most similar to the request's texts (cosine over the
  unit vectors): first the best one for each domain the local model thinks plausible for those
  texts, then the most similar overall, until `fewshot_token_budget` tokens.

Tokens are estimated as characters / 3: Russian text runs about 2.5-3.5 characters per token in
common BPE vocabularies, so this errs on the side of overestimating.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
from scipy.sparse import csr_matrix

from esk_pipeline.pipeline.labeler._prompts import example_line, question_hash
from esk_pipeline.pipeline.local_model import LocalModel, Prediction
from esk_pipeline.pipeline.text import model_form

_CHARS_PER_TOKEN = 3


def estimate_tokens(text: str) -> int:
    """A generous token count for `text` (see the module docstring)."""
    return len(text) // _CHARS_PER_TOKEN + 1


def example_digest(text: str, domain: str) -> str:
    """A short digest of one labelled example, by its normalised text as the pool knows it (what
    the per-text cache records as shown)."""
    return question_hash([model_form(text), domain])[:16]


class FewShotPool:
    """The labelled examples a request can show, and the choice among them.

    Args:
        examples: (text, domain) pairs, later ones winning for the same normalised text.
        local_model: the fitted local model whose vectors measure similarity.
        dynamic: choose per request (`for_request`) rather than once (`static`).
        token_budget: the most tokens the chosen examples may take; 0 shows none.
    """

    def __init__(
        self,
        examples: Iterable[tuple[str, str]],
        local_model: LocalModel,
        *,
        dynamic: bool,
        token_budget: int,
    ) -> None:
        pool: dict[str, tuple[str, str]] = {}
        for text, domain in examples:
            pool[model_form(text)] = (text, domain)  # a later (verified) label wins
        self.dynamic = dynamic
        self.token_budget = token_budget
        self.examples = list(pool.values())
        domains = np.array([domain for _, domain in self.examples])
        self._by_domain = {d: np.flatnonzero(domains == d) for d in dict.fromkeys(domains)}
        self._matrix = local_model.transform([text for text, _ in self.examples])
        self._tokens = np.array([estimate_tokens(example_line(*ex)) for ex in self.examples])
        self._digests = frozenset(example_digest(*example) for example in self.examples)

    def holds(self, digests: Iterable[str]) -> bool:
        """Whether every example with these `example_digest`s is in the pool (the same normalised
        text with the same domain)."""
        return self._digests.issuperset(digests)

    def for_request(
        self, vectors: csr_matrix, predictions: Sequence[Prediction]
    ) -> list[tuple[str, str]]:
        """Dynamic examples for one request's texts (their unit `vectors`) within the budget:
        the most similar example of each domain the local model finds plausible, then the most
        similar overall. None when the pool is static (its examples are in the system prompt)."""
        if not self.dynamic:
            return []
        scores = (vectors @ self._matrix.T).max(axis=0).toarray().ravel()
        candidates = dict.fromkeys(d for p in predictions for d, _ in p[2])
        fill = np.argsort(-scores, kind="stable")
        return self._within_budget(scores, candidates, fill[scores[fill] > 0].tolist())

    def static(self, domain_ids: Sequence[str]) -> list[tuple[str, str]]:
        """The first example of each domain, in `domain_ids` order, within the budget."""
        return self._within_budget(np.zeros(len(self.examples)), dict.fromkeys(domain_ids), [])

    def _within_budget(
        self, scores: np.ndarray, candidates: dict[str, None], fill: list[int]
    ) -> list[tuple[str, str]]:
        """The best-scoring example of each candidate domain, then `fill`, within the budget."""
        budget = self.token_budget
        if budget <= 0 or not self.examples:
            return []
        best_per_domain = [
            int(members[np.argmax(scores[members])])
            for members in (self._by_domain.get(d) for d in candidates)
            if members is not None
        ]
        chosen: list[int] = []
        spent = 0
        for index in dict.fromkeys([*best_per_domain, *fill]):
            cost = int(self._tokens[index])
            if spent + cost <= budget:
                chosen.append(index)
                spent += cost
        return [self.examples[i] for i in chosen]
