"""`LabelerAgent`: every cleaned text gets a taxonomy domain, a confidence and who decided.

The agent holds what outlives a call: the config, the taxonomy, the local model (the cascade's
first tier), the LLM client (when `model` is not "local"), the per-text result cache, and the
few-shot pool. Each `classify_dataframe` call runs its unique normalised texts through a
`Cascade` (see `_cascade` for the tiers, batching, follow-ups, failures and caching); identical
normalised texts are labelled once, and every row gets exactly one result.

Only taxonomy domains and the batch's own ids can come out: the output type constrains them
(`_prompts.answer_type`), and each answer is checked again after the fact (`_answers`). What ends
below `low_conf_threshold`, or failed, is for human review (`get_low_confidence_items`).

Feedback: `learn(verified)` retrains the local model on human-verified labels and adds them to
the few-shot pool.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import pandas as pd
from pydantic import BaseModel
from pydantic_ai.models import Model

from esk_pipeline.pipeline.ids import row_ids
from esk_pipeline.pipeline.labeler._cascade import Cascade
from esk_pipeline.pipeline.labeler._fewshot import FewShotPool
from esk_pipeline.pipeline.labeler._prompts import PROMPT_VERSION, answer_type, system_prompt
from esk_pipeline.pipeline.labeler.models import CascadeReport, ClassificationResult, LabelerConfig
from esk_pipeline.pipeline.llm import (
    LLMClient,
    ResponseCache,
    UsageMeter,
    endpoint_kind,
)
from esk_pipeline.pipeline.llm.cache import CACHE_FILE_NAME
from esk_pipeline.pipeline.local_model import LocalModel
from esk_pipeline.pipeline.progress import Progress, ProgressReporter
from esk_pipeline.pipeline.taxonomy import Taxonomy
from esk_pipeline.pipeline.text import model_form

__all__ = ["LabelerAgent"]


class LabelerAgent:
    """Labels texts with the cascade (local model, then the LLM for what it is unsure of).

    Args:
        config: how to label (see `LabelerConfig`).
        taxonomy: the domains that can come out.
        verified: human-verified (text, domain) pairs: local-model training data and few-shot
            candidates.
        model_override: a pydantic-ai model (TestModel, FunctionModel) answering instead of the
            endpoint; used only when `config.model` is not "local".
        usage: the run's `UsageMeter` (shared to share a budget); a fresh one from settings if None.
        progress_callback: receives progress lines (e.g. Dagster's ``context.log.info``); without
            it a terminal gets a progress bar.
        llm_client: an already built `LLMClient` to use instead of building one from `config`.
    """

    def __init__(
        self,
        config: LabelerConfig,
        taxonomy: Taxonomy,
        *,
        verified: Iterable[tuple[str, str]] = (),
        model_override: Model | None = None,
        usage: UsageMeter | None = None,
        progress_callback: Callable[[str], Any] | None = None,
        llm_client: LLMClient | None = None,
    ) -> None:
        self.config = config
        self.taxonomy = taxonomy
        self._taxonomy_fingerprint = taxonomy.fingerprint  # hashed once, not per text
        self.progress_callback = progress_callback
        self.usage = llm_client.usage if llm_client is not None else (usage or UsageMeter())
        # Placed before the taxonomy-built system prompt (the legacy shim's `system_prompt`).
        self.extra_instructions = ""
        self._answer_types: dict[int, type[BaseModel]] = {}  # by batch size, built once each
        self._cache = (
            ResponseCache(
                config.cache_dir / CACHE_FILE_NAME,
                ttl_hours=config.cache_ttl_hours,
                unread_days=config.cache_unread_days,
            )
            if config.use_cache
            else None
        )
        self._client: LLMClient | None = None
        self._owns_client = llm_client is None
        if not config.is_local:
            self._client = llm_client or LLMClient(
                config.endpoint(),
                rate_limit=config.rate_limit,
                concurrency=config.concurrency,
                max_retries=config.max_retries,
                cache=self._cache,
                usage=self.usage,
                model_override=model_override,
                backoff_initial=config.backoff_seconds,
                retry_after_cap=config.retry_after_cap,
            )
        self._verified: list[tuple[str, str]] = []
        self.local_model = LocalModel()
        self.learn(verified)

    # -- versions and feedback -------------------------------------------------------

    @property
    def version(self) -> str:
        """The labeler's code/data version: prompt version + taxonomy fingerprint. Changing
        either changes what a label means, so downstream labels become stale."""
        return f"{PROMPT_VERSION}+{self._taxonomy_fingerprint}"

    @property
    def system_prompt(self) -> str:
        """The static part of every request, after `extra_instructions` when there are any."""
        base = self._system_prompt
        return f"{self.extra_instructions}\n\n{base}" if self.extra_instructions else base

    def _answer_type(self, size: int) -> type[BaseModel]:
        if size not in self._answer_types:
            self._answer_types[size] = answer_type(self.taxonomy.ids, size)
        return self._answer_types[size]

    def learn(self, verified: Iterable[tuple[str, str]]) -> None:
        """Add human-verified (text, domain) pairs: retrain the local model on everything
        verified so far and extend the few-shot pool. Unknown domains are ignored."""
        known = set(self.taxonomy.ids)
        self._verified.extend((t, d) for t, d in verified if d in known and t and t.strip())
        self.local_model.fit(self.taxonomy, self._verified)
        self.fewshot = FewShotPool(
            [*self.taxonomy.examples(), *self._verified],
            self.local_model,
            dynamic=self.config.use_dynamic_fewshot,
            token_budget=self.config.fewshot_token_budget,
        )
        dynamic = self.config.use_dynamic_fewshot
        self._static_examples = [] if dynamic else self.fewshot.static(self.taxonomy.ids)
        self._system_prompt = system_prompt(self.taxonomy, self._static_examples)

    # -- classification --------------------------------------------------------------

    async def classify_one(self, text: str) -> ClassificationResult:
        """Label one text (through the same cascade, cache and checks as a frame)."""
        [result] = await self.classify_dataframe(pd.DataFrame({"text": [text]}))
        return result

    async def classify_dataframe(
        self, df: pd.DataFrame, *, progress: ProgressReporter | None = None
    ) -> list[ClassificationResult]:
        """One result per row of `df` (column `text`, optional `row_id`; made with
        `ids.row_id` when missing), in row order. Identical normalised texts are labelled once.

        `progress` (a caller's reporter spanning several frames) is advanced by the rows of
        `df`: each distinct text as it is labelled, its repeats when the frame is done. Without
        it, the agent reports this frame alone to `progress_callback`.
        """
        texts = [str(t) for t in df["text"].tolist()]
        ids = [str(r) for r in df["row_id"]] if "row_id" in df.columns else row_ids(texts)
        keys = [model_form(t) for t in texts]
        representative = dict(zip(reversed(keys), reversed(texts), strict=True))
        unique = list(dict.fromkeys(keys))
        if progress is None:
            with Progress(
                len(unique), description="labeling", unit="texts", callback=self.progress_callback
            ) as own:
                outcomes = await self._cascade(representative).run(unique, own)
        else:
            outcomes = await self._cascade(representative).run(unique, progress)
            progress.advance(len(keys) - len(unique))
        return [
            ClassificationResult(row_id=rid, text=text, **outcomes[key].model_dump())
            for rid, text, key in zip(ids, texts, keys, strict=True)
        ]

    def _cascade(self, texts: dict[str, str]) -> Cascade:
        """A run over `texts` (key -> text) with the agent's current prompt and pool."""
        return Cascade(
            texts,
            config=self.config,
            taxonomy=self.taxonomy,
            local_model=self.local_model,
            client=self._client,
            cache=self._cache,
            system_prompt=self.system_prompt,
            fewshot=self.fewshot,
            static_examples=self._static_examples,
            key_scope=self._text_key_scope(),
            answer_type=self._answer_type,
        )

    def _text_key_scope(self) -> list[str]:
        """What a per-text cache key hashes besides the text: what else makes the question. Not
        the few-shot pool nor the local model: both change with every human decision, and the
        cascade checks the examples an answer was shown instead (see `_cascade`)."""
        if self._client is None:  # the local model alone uses no per-text cache
            return []
        # The endpoint as the client's batch cache knows it: an answer lasts, so one from
        # another server, output mode or without logprobs must not stand for this one's.
        return [
            PROMPT_VERSION,
            self.config.model,
            endpoint_kind(self._client.endpoint),
            self._client.endpoint.api_base or "",
            self._client.output_mode,
            str(self.config.token_logprobs),
            self._taxonomy_fingerprint,
            self.extra_instructions,
        ]

    def get_low_confidence_items(
        self, results: Iterable[ClassificationResult]
    ) -> list[ClassificationResult]:
        """What a person should look at: failed, or labelled below `low_conf_threshold`.
        Deferred items are not here: the next run labels them."""
        return [
            r
            for r in results
            if r.status == "failed"
            or (r.status == "labeled" and r.confidence < self.config.low_conf_threshold)
        ]

    def cascade_report(self, results: Sequence[ClassificationResult]) -> CascadeReport:
        """Counts and shares per tier for `results`, plus the usage meter's snapshot."""
        threshold = self.config.local_accept_threshold
        labeled = [r for r in results if r.status == "labeled"]
        local = [r for r in labeled if r.tier == "local"]
        llm = [r for r in labeled if r.tier == "llm"]
        return CascadeReport(
            total=len(results),
            cascade_accepted_local=sum(r.confidence >= threshold for r in local),
            cascade_kept_local_below_threshold=sum(r.confidence < threshold for r in local),
            llm=len(llm),
            llm_cached=sum(r.cached for r in llm),
            failed=sum(r.status == "failed" for r in results),
            deferred=sum(r.status == "deferred" for r in results),
            for_review=len(self.get_low_confidence_items(results)),
            usage=self.usage.snapshot(),
        )

    def prune_cache(self) -> int:
        """Delete what the answer cache keeps for no one (`ResponseCache.prune`): expired answers,
        and per-text ones unread for `cache_unread_days`; how many went (0 without a cache)."""
        return self._cache.prune() if self._cache is not None else 0

    async def aclose(self) -> None:
        """Close the LLM client's HTTP connections (unless the client was passed in), from the
        event loop that used them, and the cache file the agent opened. The agent stays usable:
        a later call reconnects and reopens."""
        if self._client is not None and self._owns_client:
            await self._client.aclose()
        if self._cache is not None:
            self._cache.close()
