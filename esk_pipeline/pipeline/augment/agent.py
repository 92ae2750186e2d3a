"""`AugmenterAgent`: generates synthetic samples for rare domains and runs them through quality
control.

`balance(labelled, real_texts)` is the whole job: it reads the label distribution, plans how many
samples each domain needs (`_planning`), generates candidates from diverse confident source
texts, checks every candidate (`_quality`) and returns an `AugmentationReport`.
`augment_batch(items)` is the contract's lower-level call: variants of the given items,
quality-controlled, no planning (`augment` returns the full report of the same work).

Generation:
- offline (``model="local"``, the default when no endpoint is configured): `OfflineAugmenter`
  (offline/): typo and layout noise, abbreviations, fillers, safe reordering and synonyms from
  a shipped dictionary; ``method="offline:<operations>"``, ``model="offline"``. It makes no hard
  negatives: writing a text that truly belongs to another domain takes a model.
- LLM: one structured call per source text through the shared `LLMClient` (cache, retries, rate
  limit, concurrency, budget, cost), returning `LLMAugmentation`: paraphrases and, when
  ``include_hard_negatives``, texts that look alike but belong to another domain of the taxonomy
  (``method="llm_paraphrase"`` / ``"llm_hard_negative"``), PII-masked as the ETL masks texts.
  A call that fails for good leaves an explicit ``llm_failed`` record (``deferred`` when the
  run's budget stopped it): no source item is silently lost.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import pandas as pd
from pydantic_ai.models import Model

from esk_pipeline.pipeline import LabelerAgent, LabelerConfig
from esk_pipeline.pipeline.augment._planning import (
    items_to_requests,
    plan_balance,
    select_round_robin,
)
from esk_pipeline.pipeline.augment._prompts import system_prompt, user_prompt
from esk_pipeline.pipeline.augment._quality import Candidate, DomainLabeler, quality_control
from esk_pipeline.pipeline.augment.models import (
    HARD_NEGATIVE_METHOD,
    PARAPHRASE_METHOD,
    AugmentationReport,
    AugmentedSample,
    AugmenterConfig,
    BalancePlan,
    LLMAugmentation,
    RejectedSample,
    RejectReason,
    SourceRequest,
)
from esk_pipeline.pipeline.augment.offline import OFFLINE_MODEL, OfflineAugmenter
from esk_pipeline.pipeline.llm import (
    BudgetExhausted,
    LLMCallFailed,
    LLMClient,
    ResponseCache,
    UsageMeter,
)
from esk_pipeline.pipeline.llm.cache import CACHE_FILE_NAME
from esk_pipeline.pipeline.pii import mask_texts
from esk_pipeline.pipeline.progress import Progress
from esk_pipeline.pipeline.taxonomy import DEFAULT_TAXONOMY_PATH, Taxonomy

__all__ = ["CACHE_NAMESPACE", "AugmenterAgent"]

CACHE_NAMESPACE = "augmenter"
_EXAMPLES_PER_DOMAIN = 3


class AugmenterAgent:
    """Generates quality-controlled synthetic samples (see the module docstring)."""

    def __init__(
        self,
        config: AugmenterConfig | None = None,
        taxonomy: Taxonomy | None = None,
        *,
        labeler: DomainLabeler | None = None,
        model_override: Model | None = None,
        usage: UsageMeter | None = None,
        progress_callback: Callable[[str], Any] | None = None,
        cache: ResponseCache | None = None,
    ) -> None:
        """Args:
        config: defaults from the settings.
        taxonomy: defaults to the shipped ``data/taxonomy.yaml`` (`DEFAULT_TAXONOMY_PATH`).
        labeler: judges every candidate's domain; by default a `LabelerAgent` with its default
            config (the offline local model when no LLM is configured), built on first use.
        model_override: a pydantic-ai test model answering instead of the endpoint; it selects
            the LLM path even with ``model="local"``.
        usage: the run's usage meter (shared with other agents to share a budget).
        progress_callback: receives progress lines while generating.
        cache: the LLM answer cache; by default the persistent one under CACHE_DIR when
            ``config.use_cache``.
        """
        self.config = config if config is not None else AugmenterConfig()
        self.taxonomy = taxonomy if taxonomy is not None else Taxonomy.load(DEFAULT_TAXONOMY_PATH)
        self._labeler = labeler
        # What this agent built itself, and so closes in `aclose` (not what it was given).
        self._own_labeler: LabelerAgent | None = None
        self._own_cache: ResponseCache | None = None
        self.model_override = model_override
        self.usage = usage if usage is not None else UsageMeter()
        self.progress_callback = progress_callback
        self.uses_llm = model_override is not None or not self.config.is_local
        self.offline = OfflineAugmenter(seed=self.config.seed)
        self._client: LLMClient | None = None
        if self.uses_llm:
            if cache is None and self.config.use_cache:
                cache = self._own_cache = ResponseCache(
                    config.cache_dir / CACHE_FILE_NAME,
                    ttl_hours=config.cache_ttl_hours,
                    unread_days=config.cache_unread_days,
                )
            self._client = LLMClient(
                self.config.endpoint(),
                rate_limit=self.config.rate_limit,
                concurrency=self.config.concurrency,
                max_retries=self.config.max_retries,
                cache=cache,
                usage=self.usage,
                model_override=model_override,
                backoff_initial=self.config.backoff_seconds,
            )

    @property
    def labeler(self) -> DomainLabeler:
        if self._labeler is None:
            self._labeler = self._own_labeler = LabelerAgent(LabelerConfig(), self.taxonomy)
        return self._labeler

    async def augment_batch(self, items: Iterable[Mapping[str, Any]]) -> list[AugmentedSample]:
        """`variants_per_sample` quality-controlled variants per item (``{"text": ...,
        "domain_id": ...}``, or ``"domain"``; optional ``"row_id"``). The full report of the
        same work is `augment`."""
        return (await self.augment(items)).samples

    async def augment(
        self, items: Iterable[Mapping[str, Any]], *, real_texts: Iterable[str] = ()
    ) -> AugmentationReport:
        """Generate and check variants of `items`; `real_texts` are extra texts no sample may
        duplicate (the items' own texts always count)."""
        requests = items_to_requests(items, self.taxonomy, self.config)
        return await self._run(requests, real_texts, counts_before={}, plan=None)

    async def aclose(self) -> None:
        """Close the LLM client's connections (each run closes them too), and the default
        labeler and cache file if this agent built them; safe to repeat, and the agent stays
        usable (they reopen)."""
        if self._client is not None:
            await self._client.aclose()
        if self._own_labeler is not None:
            await self._own_labeler.aclose()
        if self._own_cache is not None:
            self._own_cache.close()

    def plan(self, labelled: pd.DataFrame) -> BalancePlan:
        return plan_balance(labelled, self.taxonomy, self.config)

    async def balance(
        self, labelled: pd.DataFrame, real_texts: Iterable[str] = ()
    ) -> AugmentationReport:
        """Plan from `labelled`'s label distribution, generate, check, and keep what each domain
        needs. `real_texts` (e.g. all cleaned texts) are what no sample may duplicate, besides
        `labelled`'s own texts."""
        texts = itertools.chain(real_texts, labelled["text"].astype(str))
        return await self.balance_planned(self.plan(labelled), texts)

    async def balance_planned(
        self, plan: BalancePlan, real_texts: Iterable[str]
    ) -> AugmentationReport:
        """`balance` with a plan made already (`SourceTally.plan`, from rows read a part at a
        time); `real_texts`, read once, must include the labelled texts themselves."""
        return await self._run(
            plan.requests, real_texts, counts_before=plan.counts_before, plan=plan
        )

    async def _run(
        self,
        requests: list[SourceRequest],
        real_texts: Iterable[str],
        *,
        counts_before: dict[str, int],
        plan: BalancePlan | None,
    ) -> AugmentationReport:
        candidates, failed = await self._generate(requests)
        samples, rejected = await quality_control(
            candidates,
            itertools.chain(real_texts, (r.text for r in requests)),
            taxonomy=self.taxonomy,
            config=self.config,
            labeler=lambda: self.labeler,
        )
        surplus = 0
        if plan is not None:
            samples, surplus = select_round_robin(samples, plan, self.config)
        added = Counter(s.domain for s in samples)
        counts_after = {
            d: counts_before.get(d, 0) + added.get(d, 0)
            for d in self.taxonomy.ids
            if d in counts_before or d in added
        }
        return AugmentationReport(
            samples=samples,
            rejected=[*failed, *rejected],
            counts_before=counts_before,
            counts_after=counts_after,
            needed=plan.needed if plan is not None else {},
            n_sources=len(requests),
            n_candidates=len(candidates),
            n_surplus=surplus,
            examples=_examples(samples),
            usage=self.usage.snapshot(),
        )

    # -- generation ----------------------------------------------------------------------

    async def _generate(
        self, requests: list[SourceRequest]
    ) -> tuple[list[Candidate], list[RejectedSample]]:
        """Candidates for every request, in request order, and one record per failed request."""
        with Progress(
            len(requests), description="augmenting", callback=self.progress_callback
        ) as progress:
            if not self.uses_llm:
                candidates = []
                for request in requests:
                    candidates.extend(self._offline_candidates(request))
                    progress.advance()
                return candidates, []
            assert self._client is not None
            try:
                results = await asyncio.gather(
                    *(self._llm_candidates(request, progress) for request in requests)
                )
            finally:
                await self._client.aclose()
        candidates = [c for result in results if isinstance(result, list) for c in result]
        failed = [r for r in results if isinstance(r, RejectedSample)]
        return candidates, failed

    def _offline_candidates(self, request: SourceRequest) -> list[Candidate]:
        return [
            Candidate(v.text, request.domain, request, v.method, OFFLINE_MODEL)
            for v in self.offline.augment(request.text, request.n_variants)
        ]

    async def _llm_candidates(
        self, request: SourceRequest, progress: Progress
    ) -> list[Candidate] | RejectedSample:
        assert self._client is not None
        try:
            reply = await self._client.run(
                system_prompt=system_prompt(self.taxonomy),
                user_prompt=user_prompt(request, self.taxonomy),
                output_type=LLMAugmentation,
                cache_namespace=CACHE_NAMESPACE,
            )
        except (LLMCallFailed, BudgetExhausted) as error:
            reason: RejectReason = "llm_failed" if isinstance(error, LLMCallFailed) else "deferred"
            return RejectedSample(
                text=None,
                domain=request.domain,
                source_text=request.text,
                source_row_id=request.row_id,
                method=PARAPHRASE_METHOD,
                model=self.config.model,
                reason=reason,
                detail=str(error),
            )
        finally:
            progress.advance()
        paraphrases = list(dict.fromkeys(p.strip() for p in reply.output.paraphrases if p.strip()))
        # Masked as the ETL masks texts: the sources are, but a model may fill a placeholder
        # in or make a phone number up.
        candidates = [
            Candidate(text, request.domain, request, PARAPHRASE_METHOD, reply.model)
            for text in mask_texts(paraphrases[: request.n_variants])
        ]
        negatives = [n for n in reply.output.hard_negatives if n.text.strip()]
        negatives = negatives[: request.n_hard_negatives]
        negative_texts = mask_texts([n.text.strip() for n in negatives])
        candidates.extend(
            Candidate(text, n.domain, request, HARD_NEGATIVE_METHOD, reply.model, True)
            for text, n in zip(negative_texts, negatives, strict=True)
        )
        return candidates


def _examples(samples: list[AugmentedSample]) -> list[dict[str, str]]:
    """A few accepted samples per domain, for asset metadata."""
    shown: Counter[str] = Counter()
    examples = []
    for sample in samples:
        if shown[sample.domain] < _EXAMPLES_PER_DOMAIN:
            shown[sample.domain] += 1
            examples.append(
                {
                    "domain": sample.domain,
                    "source_text": sample.source_text,
                    "text": sample.text,
                    "method": sample.method,
                }
            )
    return examples
