"""The labeler: every cleaned text gets a taxonomy domain and a confidence that can be trusted.

A cascade, cheapest tier first:

1. the offline `LocalModel` (char/word n-grams, calibrated) labels everything; a label with
   confidence >= `local_accept_threshold` is accepted (tier "local") without an LLM call;
2. with an LLM configured (`model` other than "local"), the rest go to it through the shared
   `LLMClient`, `batch_size` texts per request; with none, the local label stands whatever its
   confidence (low ones go to review);
3. what ends below `low_conf_threshold`, or failed, is for human review
   (`get_low_confidence_items`).

Only taxonomy domains and the batch's own ids can come out: the LLM's output type constrains
`domain` to the taxonomy ids and `id` to "t1".."tN" for a batch of N (`Literal`s built at run
time, one output type per batch size, so grammar-constrained servers cannot even produce
another; the schema also asks for exactly N items), and each answer is checked again after the
fact. An out-of-taxonomy answer is invalid output, retried, and after `max_retries` rounds the
item is "failed", never written as a label.

Batching: one prompt lists the texts under short ids ("t1".."t20"); the answer is a list of
{id, domain, confidence} matched back by id. Ids the model skipped, answered with conflicting
domains, or answered outside the taxonomy are asked again in a follow-up: a new question holding
only those texts, renumbered, with a line saying which attempt it is, so it is never the prompt
that was just answered. A reply that settled nothing is not cached (asking again must reach the
server), and a reply that came from the cache does not use up a round. A request that fails for
good on invalid output (after the client's retries) is split in halves, so one poisonous text
cannot fail its whole batch. After `max_retries` such rounds the item is "failed" with the
reason. A request that fails for any other reason (HTTP errors, timeouts, an unreachable server)
fails its items at once: smaller requests would only fail again, and a dead endpoint costs one
request's retries per batch, not a cascade of halves. A spent run budget makes the rest
"deferred" (the next run picks them up). Nothing is dropped or duplicated: one result per row.

Prompt: the system prompt is the static part (task, one compact line per domain, the answer
format said once, and the few-shot examples when they are static) and comes first, so servers
that reuse an evaluated prompt prefix (llama.cpp, vLLM prefix caching) evaluate it once; the
user prompt holds what changes per request (dynamic few-shot, the texts). Requests ask for
temperature 0.

Confidence: where the endpoint returns token log-probabilities (OpenAI, vLLM and llama.cpp do
for text answers, i.e. the JSON output modes), `llm_token_confidence` is the probability the
model gave the chosen domain id's first tokens: those covering the shortest prefix that tells it
apart from every other taxonomy id (the rest is then forced). `confidence` is that probability
where there is one, else the model's self-reported value; `llm_self_confidence` keeps the
latter. Neither is trusted as it is: the audit calibrates whichever `confidence` holds
(`trust.calibration`).
An LLM label's `top_candidates` are its domain with its confidence, then the local model's other
candidates (with the local model's scores) as hints for review.

Caches (both in the shared `ResponseCache` file under `cache_dir`):
- the LLM client caches each batch prompt's answer (its key covers model, endpoint, output mode,
  prompts, schema);
- a per-text result cache, so a re-run over unchanged input sends zero requests even when the
  batches come out composed differently. Its key is sha256 over (PROMPT_VERSION, model,
  endpoint kind, taxonomy fingerprint, few-shot set id, normalised text), where the few-shot set
  id hashes the few-shot pool (taxonomy examples + verified labels), the dynamic flag and token
  budget. Keys are looked up with one batched `get_many` per chunk of texts (see below) before
  its batches are built; results are written after each batch, so a crash loses at most the
  batches in flight.

Pipelining: with an LLM, the local model scores the texts `_LOCAL_CHUNK` at a time, in a worker
thread, and full batches of what it leaves are sent at once, so requests start after the first
chunk, not after the whole frame, and the rest is scored while they are in flight.

Dynamic few-shot (`use_dynamic_fewshot`; without it, the first example of each domain within
the budget, in the static system prompt): per request, the pool examples most similar to the
request's texts (cosine over the local model's TF-IDF vectors), first the best one for each
domain the local model thinks plausible for those texts, then the most similar overall, until
`fewshot_token_budget` tokens (estimated as characters / 3: Russian text runs about 2.5-3.5
characters per token in common BPE vocabularies, so this errs on the side of overestimating).

Feedback: `learn(verified)` retrains the local model on human-verified labels and adds them to
the few-shot pool.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import pandas as pd
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    create_model,
)
from pydantic_ai.models import Model
from scipy.sparse import csr_matrix, vstack

from esk_pipeline.pipeline.ids import row_ids
from esk_pipeline.pipeline.labels import origin_of_tier
from esk_pipeline.pipeline.llm import (
    AgentEndpointConfig,
    BudgetExhausted,
    LLMCallFailed,
    LLMClient,
    LLMReply,
    Progress,
    ResponseCache,
    UsageMeter,
    endpoint_kind,
)
from esk_pipeline.pipeline.llm.cache import CACHE_FILE_NAME
from esk_pipeline.pipeline.local_model import LocalModel, Prediction
from esk_pipeline.pipeline.taxonomy import Taxonomy
from esk_pipeline.pipeline.text import model_form
from esk_pipeline.settings import LabelerSettings, get_settings

# Bump whenever the prompts or the answer schema change: part of `LabelerAgent.version` and of
# every cache key, so old answers are not reused for a different question.
PROMPT_VERSION = "labeler-prompt-v2"
LOCAL_MODEL_NAME = "local"
_CACHE_NAMESPACE = "labeler"
_TEXT_KEY_PREFIX = "labeler:text:"
_CHARS_PER_TOKEN = 3
_LOCAL_CHUNK = 512  # texts the local model scores at a time when an LLM takes the rest
_TEMPERATURE = 0.0  # one best answer per question; a follow-up is a different question
_DOMAIN_VALUE = re.compile(r'"domain"\s*:\s*"')  # where each item's domain id starts

Tier = Literal["local", "llm", "review"]
Status = Literal["labeled", "failed", "deferred"]


def _clamp_unit(value: float) -> float:
    """Small servers do not enforce numeric bounds in the schema: clamp instead of rejecting."""
    return min(1.0, max(0.0, value))


Confidence = Annotated[float, AfterValidator(_clamp_unit)]


def _labeler_settings() -> LabelerSettings:
    return get_settings().labeler


class LabelerConfig(AgentEndpointConfig):
    """How to label. Defaults come from LABELER_*, LLM_LABELER_* / LLM_* and CACHE_* settings;
    with no LLM endpoint configured, `model` is "local" (the offline model alone)."""

    settings_agent = "labeler"
    model_config = ConfigDict(extra="forbid")

    batch_size: int = Field(default_factory=lambda: _labeler_settings().batch_size, ge=1)
    rate_limit: float = Field(default_factory=lambda: _labeler_settings().rate_limit, ge=0)
    max_retries: int = Field(default_factory=lambda: _labeler_settings().max_retries, ge=0)
    low_conf_threshold: float = Field(
        default_factory=lambda: _labeler_settings().low_conf_threshold, ge=0, le=1
    )
    use_cache: bool = Field(
        default_factory=lambda: _labeler_settings().use_cache and get_settings().cache.enabled
    )
    use_dynamic_fewshot: bool = Field(
        default_factory=lambda: _labeler_settings().use_dynamic_fewshot
    )
    concurrency: int = Field(default_factory=lambda: _labeler_settings().concurrency, ge=1)
    local_accept_threshold: float = Field(
        default_factory=lambda: _labeler_settings().local_accept_threshold, ge=0, le=1
    )
    fewshot_token_budget: int = Field(
        default_factory=lambda: _labeler_settings().fewshot_token_budget, ge=0
    )
    cache_dir: Path = Field(default_factory=lambda: get_settings().cache.dir)
    cache_ttl_hours: float = Field(default_factory=lambda: get_settings().cache.ttl_hours)
    # Retry pacing of the LLM client (seconds); tests shorten them.
    backoff_seconds: float = Field(default=0.5, ge=0)
    retry_after_cap: float = Field(default=60.0, ge=0)
    # Ask for token logprobs (for `llm_token_confidence`); off for a server that rejects them.
    token_logprobs: bool = True


class ClassificationResult(BaseModel):
    """One text's label: which domain, how sure, the runners-up, and who decided."""

    row_id: str
    text: str
    domain: str | None = None  # None unless status is "labeled"
    confidence: Confidence = 0.0
    top_candidates: list[tuple[str, float]] = Field(default_factory=list)
    label_source: str = LOCAL_MODEL_NAME  # "local", the LLM model name, or "reviewer:<id>"
    model: str = LOCAL_MODEL_NAME
    tier: Tier = "local"
    status: Status = "labeled"
    error: str | None = None
    cached: bool = False  # the LLM answer came from a cache, not a request
    # LLM labels only (None otherwise): the model's own confidence, and the probability of the
    # domain id's first tokens when the endpoint returned logprobs (see the module docstring).
    llm_self_confidence: float | None = None
    llm_token_confidence: float | None = None


class CascadeReport(BaseModel):
    """Who handled how much of a run: counts, shares of the total, cache hit rate, usage."""

    total: int
    local_accepted: int  # local label at or above local_accept_threshold
    local_unaccepted: int  # local label below it, kept because no LLM is configured
    llm: int  # labelled by the LLM (from a request or a cache)
    llm_cached: int
    failed: int
    deferred: int
    for_review: int  # below low_conf_threshold, or failed
    usage: dict[str, Any] = Field(default_factory=dict)

    @property
    def shares(self) -> dict[str, float]:
        """Each tier's share of the total (0..1)."""
        counts = {
            "local_accepted": self.local_accepted,
            "local_unaccepted": self.local_unaccepted,
            "llm": self.llm,
            "failed": self.failed,
            "deferred": self.deferred,
        }
        return {name: count / self.total if self.total else 0.0 for name, count in counts.items()}

    @property
    def cache_hit_rate(self) -> float:
        """Share of LLM-tier labels that cost no request."""
        return self.llm_cached / self.llm if self.llm else 0.0

    @property
    def tokens_per_llm_label(self) -> float:
        """Input plus output tokens of the run per LLM-tier label (cache hits included, so a
        warm cache shows up as a cheaper label); 0 when the LLM labelled nothing."""
        tokens = self.usage.get("input_tokens", 0) + self.usage.get("output_tokens", 0)
        return tokens / self.llm if self.llm else 0.0

    @property
    def cost_per_label(self) -> float:
        """The run's LLM cost per labelled item, whatever the tier (local labels are free, so
        the cascade's savings show here); 0 when nothing was labelled."""
        labelled = self.local_accepted + self.local_unaccepted + self.llm
        return self.usage.get("cost", 0.0) / labelled if labelled else 0.0


class _Outcome(BaseModel):
    """A result without its row: what one unique (normalised) text got."""

    domain: str | None
    confidence: Confidence
    top_candidates: list[tuple[str, float]]
    label_source: str
    model: str
    tier: Tier
    status: Status
    error: str | None = None
    cached: bool = False
    llm_self_confidence: float | None = None
    llm_token_confidence: float | None = None


@dataclass
class _LLMRun:
    """What the LLM requests of one `classify_dataframe` call share, filled chunk by chunk."""

    texts: dict[str, str]  # normalised key -> the text as given
    predictions: dict[str, Prediction] = field(default_factory=dict)  # hints if the LLM fails
    _chunks: list[csr_matrix] = field(default_factory=list)  # the local model's unit vectors
    _places: dict[str, tuple[int, int]] = field(default_factory=dict)  # key -> (chunk, row)

    def add(
        self, keys: Sequence[str], predictions: Sequence[Prediction], vectors: csr_matrix
    ) -> None:
        """Record one chunk's local predictions and feature vectors (row i is keys[i])."""
        self.predictions.update(zip(keys, predictions, strict=True))
        chunk = len(self._chunks)
        self._chunks.append(vectors)
        self._places.update((key, (chunk, row)) for row, key in enumerate(keys))

    def vectors_of(self, keys: Sequence[str]) -> csr_matrix:
        """The feature vectors of `keys` (for the few-shot search), grouped by chunk."""
        rows: dict[int, list[int]] = {}
        for key in keys:
            chunk, row = self._places[key]
            rows.setdefault(chunk, []).append(row)
        parts = [self._chunks[chunk][chunk_rows] for chunk, chunk_rows in rows.items()]
        return parts[0] if len(parts) == 1 else vstack(parts, format="csr")


def _short_ids(size: int) -> list[str]:
    return [f"t{i}" for i in range(1, size + 1)]


def _answer_type(domain_ids: Sequence[str], size: int) -> type[BaseModel]:
    """The LLM's output type for a batch of `size`: ``{"items": [{"id", "domain",
    "confidence"}]}`` with `id` restricted to t1..t<size> and `domain` to the taxonomy's ids."""
    short_id = Literal[tuple(_short_ids(size))]  # type: ignore[valid-type]
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


def _estimate_tokens(text: str) -> int:
    return len(text) // _CHARS_PER_TOKEN + 1


def _hash(parts: Sequence[Any]) -> str:
    raw = json.dumps(list(parts), ensure_ascii=False, sort_keys=True).encode("utf-8")
    return hashlib.sha256(raw).hexdigest()


def _system_prompt(taxonomy: Taxonomy, examples: Sequence[tuple[str, str]]) -> str:
    """The static part of every request: task, domains, static examples, the answer format."""
    lines = [
        "Classify each request sent to a public-service contact centre into one domain.",
        "Domains (id: name. description):",
        *(f"{d.id}: {d.name}. {d.description}" for d in taxonomy.domains),
    ]
    if taxonomy.other_id:
        lines.append(f"Use {taxonomy.other_id} for anything that fits no other domain.")
    if examples:
        lines += ["", "Labelled examples:", *(_example_line(t, d) for t, d in examples)]
    lines += [
        "",
        'Answer with JSON only: {"items": [{"id": "t1", "domain": "<domain id>", "confidence":'
        " <0..1, the probability the domain is right>}, ...]}, one item per text id.",
    ]
    return "\n".join(lines)


def _user_prompt(texts: dict[str, str], examples: Sequence[tuple[str, str]], attempt: int) -> str:
    parts: list[str] = []
    if examples:
        parts.append("Labelled examples:")
        parts.extend(_example_line(text, domain) for text, domain in examples)
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


def _example_line(text: str, domain: str) -> str:
    return f"- {json.dumps(text, ensure_ascii=False)} -> {domain}"


def _unique_prefix_length(domain: str, domain_ids: Sequence[str]) -> int:
    """Characters of `domain` after which no other id shares its prefix (all of it if none)."""
    others = [d for d in domain_ids if d != domain]
    for length in range(1, len(domain) + 1):
        if not any(other.startswith(domain[:length]) for other in others):
            return length
    return len(domain)


def _token_confidences(
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


def _local_outcome(prediction: Prediction) -> _Outcome:
    domain, confidence, top = prediction
    return _Outcome(
        domain=domain,
        confidence=confidence,
        top_candidates=top,
        label_source=LOCAL_MODEL_NAME,
        model=LOCAL_MODEL_NAME,
        tier="local",
        status="labeled",
    )


class LabelerAgent:
    """Labels texts with the cascade described in the module docstring.

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
        self.extra_instructions = ""
        self._answer_types: dict[int, type[BaseModel]] = {}  # by batch size, built once each
        self._cache = (
            ResponseCache(config.cache_dir / CACHE_FILE_NAME, ttl_hours=config.cache_ttl_hours)
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
        base = self._system_prompt
        return f"{self.extra_instructions}\n\n{base}" if self.extra_instructions else base

    def _answer_type(self, size: int) -> type[BaseModel]:
        if size not in self._answer_types:
            self._answer_types[size] = _answer_type(self.taxonomy.ids, size)
        return self._answer_types[size]

    def learn(self, verified: Iterable[tuple[str, str]]) -> None:
        """Add human-verified (text, domain) pairs: retrain the local model on everything
        verified so far and extend the few-shot pool. Unknown domains are ignored."""
        known = set(self.taxonomy.ids)
        self._verified.extend((t, d) for t, d in verified if d in known and t and t.strip())
        self.local_model.fit(self.taxonomy, self._verified)
        pool: dict[str, tuple[str, str]] = {}
        for text, domain in [*self.taxonomy.examples(), *self._verified]:
            pool[model_form(text)] = (text, domain)  # a later (verified) label wins
        self._pool = list(pool.values())
        domains = np.array([domain for _, domain in self._pool])
        self._pool_by_domain = {d: np.flatnonzero(domains == d) for d in dict.fromkeys(domains)}
        self._pool_matrix = self.local_model.transform([text for text, _ in self._pool])
        self._pool_tokens = np.array([_estimate_tokens(_example_line(*ex)) for ex in self._pool])
        static = [] if self.config.use_dynamic_fewshot else self._static_fewshot()
        self._system_prompt = _system_prompt(self.taxonomy, static)
        self._fewshot_set_id = _hash(
            [
                self.config.use_dynamic_fewshot,
                self.config.fewshot_token_budget,
                sorted(pool.items()),
            ]
        )[:16]

    # -- classification --------------------------------------------------------------

    async def classify_one(self, text: str) -> ClassificationResult:
        """Label one text (through the same cascade, cache and checks as a frame)."""
        [result] = await self.classify_dataframe(pd.DataFrame({"text": [text]}))
        return result

    async def classify_dataframe(self, df: pd.DataFrame) -> list[ClassificationResult]:
        """One result per row of `df` (column `text`, optional `row_id`; made with
        `ids.row_id` when missing), in row order. Identical normalised texts are labelled once."""
        texts = [str(t) for t in df["text"].tolist()]
        ids = [str(r) for r in df["row_id"]] if "row_id" in df.columns else row_ids(texts)
        keys = [model_form(t) for t in texts]
        representative = dict(zip(reversed(keys), reversed(texts), strict=True))
        unique = list(dict.fromkeys(keys))
        with Progress(len(unique), description="labeling", callback=self.progress_callback) as pr:
            outcomes = await self._cascade(unique, _LLMRun(texts=representative), pr)
        return [
            ClassificationResult(row_id=rid, text=text, **outcomes[key].model_dump())
            for rid, text, key in zip(ids, texts, keys, strict=True)
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
            local_accepted=sum(r.confidence >= threshold for r in local),
            local_unaccepted=sum(r.confidence < threshold for r in local),
            llm=len(llm),
            llm_cached=sum(r.cached for r in llm),
            failed=sum(r.status == "failed" for r in results),
            deferred=sum(r.status == "deferred" for r in results),
            for_review=len(self.get_low_confidence_items(results)),
            usage=self.usage.snapshot(),
        )

    async def aclose(self) -> None:
        """Close the LLM client's HTTP connections (unless the client was passed in), from the
        event loop that used them, and the cache file the agent opened. The agent stays usable:
        a later call reconnects and reopens."""
        if self._client is not None and self._owns_client:
            await self._client.aclose()
        if self._cache is not None:
            self._cache.close()

    # -- the LLM tier ------------------------------------------------------------------

    def _text_cache_key(self, key: str) -> str:
        assert self._client is not None
        parts = [
            PROMPT_VERSION,
            self.config.model,
            endpoint_kind(self._client.endpoint),
            self._taxonomy_fingerprint,
            self._fewshot_set_id,
            self.extra_instructions,
            key,
        ]
        return _TEXT_KEY_PREFIX + _hash(parts)

    async def _cascade(
        self, keys: list[str], run: _LLMRun, progress: Progress
    ) -> dict[str, _Outcome]:
        """Outcomes for `keys`. With an LLM, the local model scores them chunk by chunk and full
        batches of what it leaves go out at once: the first request does not wait for the whole
        frame, and later chunks are scored while earlier requests are in flight."""
        chunk_size = _LOCAL_CHUNK if self._client is not None else max(len(keys), 1)
        size = self.config.batch_size
        # Batches enter only a little ahead of the client's free slots, so preparing a prompt
        # (few-shot search) overlaps the requests in flight instead of delaying them.
        gate = asyncio.Semaphore(2 * self.config.concurrency)
        outcomes: dict[str, _Outcome] = {}
        waiting: list[str] = []  # for the LLM, not in a batch yet
        requests: list[asyncio.Task[dict[str, _Outcome]]] = []
        try:
            for start in range(0, len(keys), chunk_size):
                settled = len(outcomes)
                waiting += await self._local_pass(keys[start : start + chunk_size], run, outcomes)
                progress.advance(len(outcomes) - settled)
                last_chunk = start + chunk_size >= len(keys)
                while len(waiting) >= size or (last_chunk and waiting):
                    batch, waiting = waiting[:size], waiting[size:]
                    requests.append(
                        asyncio.create_task(self._run_batch(run, batch, gate, progress))
                    )
            for answered in await asyncio.gather(*requests):
                outcomes.update(answered)
        except BaseException:  # an error or a cancellation: no request is left running
            for request in requests:
                request.cancel()
            await asyncio.gather(*requests, return_exceptions=True)
            raise
        return outcomes

    async def _local_pass(
        self, keys: list[str], run: _LLMRun, outcomes: dict[str, _Outcome]
    ) -> list[str]:
        """Score `keys` with the local model; put in `outcomes` what needs no request (accepted
        local labels, per-text cache hits). Returns the keys left for the LLM."""
        # In a worker thread, so the event loop goes on serving the requests in flight (and an
        # API caller's other requests) while the model scores.
        texts = [run.texts[k] for k in keys]
        local, vectors = await asyncio.to_thread(self.local_model.predict_with_vectors, texts)
        run.add(keys, local, vectors)
        asked = []
        for key, prediction in zip(keys, local, strict=True):
            if self._client is None or prediction[1] >= self.config.local_accept_threshold:
                outcomes[key] = _local_outcome(prediction)
            else:
                asked.append(key)
        outcomes.update(self._cached_outcomes(asked))
        return [key for key in asked if key not in outcomes]

    def _cached_outcomes(self, keys: list[str]) -> dict[str, _Outcome]:
        """Per-text cache hits among `keys`, in one batched look-up."""
        if self._cache is None or not keys:
            return {}
        cache_keys = {key: self._text_cache_key(key) for key in keys}
        stored = self._cache.get_many(list(cache_keys.values()))
        found: dict[str, _Outcome] = {}
        for key, cache_key in cache_keys.items():
            try:
                outcome = _Outcome.model_validate_json(stored[cache_key])
            except (KeyError, ValidationError):  # absent, or unreadable: ask again
                continue
            outcome.cached = True
            found[key] = outcome
        return found

    async def _run_batch(
        self, run: _LLMRun, batch: list[str], gate: asyncio.Semaphore, progress: Progress
    ) -> dict[str, _Outcome]:
        async with gate:
            answered = await self._ask(run, batch, self.config.max_retries, attempt=1)
        progress.advance(len(batch))
        return answered

    async def _ask(
        self, run: _LLMRun, keys: list[str], rounds_left: int, attempt: int
    ) -> dict[str, _Outcome]:
        """One request for `keys`, then follow-ups for what it did not settle (see module doc)."""
        assert self._client is not None
        short_ids = dict(zip(_short_ids(len(keys)), keys, strict=True))
        examples = self._fewshot(run.vectors_of(keys), [run.predictions[k] for k in keys])
        texts = {s: run.texts[k] for s, k in short_ids.items()}

        def settles_any(output: Any) -> bool:
            unsent = LLMReply(output=output, model=self.config.model, cached=False)
            return bool(self._match(short_ids, output.items, run, unsent)[0])

        try:
            reply = await self._client.run(
                system_prompt=self.system_prompt,
                user_prompt=_user_prompt(texts, examples, attempt),
                output_type=self._answer_type(len(keys)),
                cache_namespace=_CACHE_NAMESPACE,
                output_template=False,  # the system prompt says the format
                logprobs=self.config.token_logprobs,
                temperature=_TEMPERATURE,
                cacheable=settles_any,
            )
        except BudgetExhausted as exc:
            return self._unlabeled(run, keys, "deferred", str(exc))
        except LLMCallFailed as exc:
            # Invalid output after the client's retries: split, so one text that keeps getting
            # a bad answer fails alone. HTTP, connection and timeout errors would only fail again.
            if rounds_left == 0 or len(keys) == 1 or not exc.invalid_output:
                return self._unlabeled(run, keys, "failed", str(exc))
            half = (len(keys) + 1) // 2
            parts = await asyncio.gather(
                self._ask(run, keys[:half], rounds_left - 1, attempt + 1),
                self._ask(run, keys[half:], rounds_left - 1, attempt + 1),
            )
            return {**parts[0], **parts[1]}

        settled, reasons = self._match(short_ids, reply.output.items, run, reply)
        if self._cache is not None and settled:
            self._cache.put_many(
                (self._text_cache_key(key), outcome.model_dump_json())
                for key, outcome in settled.items()
            )
        unsettled = [key for key in keys if key not in settled]
        if not unsettled:
            return settled
        # A cache hit sent nothing, so it uses up no round (it settled something, or it would
        # not have been cached: the follow-up is smaller, and the recursion ends).
        spent = 0 if reply.cached and settled else 1
        if rounds_left - spent < 0:
            failed = {
                key: self._unlabeled(run, [key], "failed", reasons[key])[key] for key in unsettled
            }
            return {**settled, **failed}
        follow_up = await self._ask(run, unsettled, rounds_left - spent, attempt + spent)
        return {**settled, **follow_up}

    def _match(
        self, short_ids: dict[str, str], items: Sequence[Any], run: _LLMRun, reply: LLMReply[Any]
    ) -> tuple[dict[str, _Outcome], dict[str, str]]:
        """Answers matched back to keys by short id; reasons for the ids left unsettled."""
        token_confidences = _token_confidences(
            reply.logprobs, [item.domain for item in items], self.taxonomy.ids
        )
        answers: dict[str, list[tuple[Any, float | None]]] = {}
        for item, token_confidence in zip(items, token_confidences, strict=True):
            answers.setdefault(item.id, []).append((item, token_confidence))
        settled: dict[str, _Outcome] = {}
        reasons: dict[str, str] = {}
        for short_id, key in short_ids.items():
            given = answers.get(short_id, [])
            # Checked again after the fact: not every server enforces the schema.
            valid = [(a, tc) for a, tc in given if a.domain in self.taxonomy]
            domains = {a.domain for a, _ in valid}
            if not given:
                reasons[key] = "the model's answer skipped this text"
            elif not valid:
                reasons[key] = f"domain outside the taxonomy: {given[0][0].domain!r}"
            elif len(domains) > 1:
                reasons[key] = f"conflicting answers for one text: {sorted(domains)}"
            else:
                answer, token_confidence = max(valid, key=lambda pair: pair[0].confidence)
                settled[key] = self._llm_outcome(
                    answer, token_confidence, run.predictions[key], reply
                )
        return settled, reasons

    def _llm_outcome(
        self,
        answer: Any,
        token_confidence: float | None,
        prediction: Prediction,
        reply: LLMReply[Any],
    ) -> _Outcome:
        self_reported = round(answer.confidence, 4)
        confidence = token_confidence if token_confidence is not None else answer.confidence
        hints = [(d, score) for d, score in prediction[2] if d != answer.domain]
        return _Outcome(
            domain=answer.domain,
            confidence=confidence,
            top_candidates=[(answer.domain, round(confidence, 4)), *hints][:3],
            label_source=reply.model,
            model=reply.model,
            tier="llm",
            status="labeled",
            cached=reply.cached,
            llm_self_confidence=self_reported,
            llm_token_confidence=token_confidence,
        )

    def _unlabeled(
        self, run: _LLMRun, keys: Iterable[str], status: Status, reason: str
    ) -> dict[str, _Outcome]:
        """Failed/deferred outcomes; the local model's candidates stay as hints for review."""
        return {
            key: _Outcome(
                domain=None,
                confidence=0.0,
                top_candidates=run.predictions[key][2],
                label_source=self.config.model,
                model=self.config.model,
                tier="llm",
                status=status,
                error=reason,
            )
            for key in keys
        }

    def _fewshot(
        self, vectors: csr_matrix, predictions: Sequence[Prediction]
    ) -> list[tuple[str, str]]:
        """Dynamic examples for one request's texts (their unit `vectors`), within the token
        budget: the most similar example of each domain the local model finds plausible, then
        the most similar overall (see module docstring). None without dynamic few-shot (the
        static examples are in the system prompt)."""
        if not self.config.use_dynamic_fewshot:
            return []
        scores = (vectors @ self._pool_matrix.T).max(axis=0).toarray().ravel()
        candidates = dict.fromkeys(d for p in predictions for d, _ in p[2])
        fill = np.argsort(-scores, kind="stable")
        return self._within_budget(scores, candidates, fill[scores[fill] > 0].tolist())

    def _static_fewshot(self) -> list[tuple[str, str]]:
        """The first example of each domain, in taxonomy order, within the token budget."""
        return self._within_budget(np.zeros(len(self._pool)), dict.fromkeys(self.taxonomy.ids), [])

    def _within_budget(
        self, scores: np.ndarray, candidates: dict[str, None], fill: list[int]
    ) -> list[tuple[str, str]]:
        """The best-scoring example of each candidate domain, then `fill`, within the budget."""
        budget = self.config.fewshot_token_budget
        if budget <= 0 or not self._pool:
            return []
        best_per_domain = [
            int(members[np.argmax(scores[members])])
            for members in (self._pool_by_domain.get(d) for d in candidates)
            if members is not None
        ]
        chosen: list[int] = []
        spent = 0
        for index in dict.fromkeys([*best_per_domain, *fill]):
            cost = int(self._pool_tokens[index])
            if spent + cost <= budget:
                chosen.append(index)
                spent += cost
        return [self._pool[i] for i in chosen]


def results_to_frame(results: Iterable[ClassificationResult]) -> pd.DataFrame:
    """The label-row frame (records.md): row_id, text, domain, confidence, top_candidates (JSON
    string of [[domain, score], ...]), label_source, label_origin, status, error, tier, and for
    LLM labels llm_self_confidence and llm_token_confidence (NaN elsewhere)."""
    rows = [
        {
            "row_id": r.row_id,
            "text": r.text,
            "domain": r.domain,
            "confidence": r.confidence,
            "top_candidates": json.dumps([list(c) for c in r.top_candidates], ensure_ascii=False),
            "label_source": r.label_source,
            "label_origin": origin_of_tier(r.tier),
            "status": r.status,
            "error": r.error,
            "tier": r.tier,
            "llm_self_confidence": r.llm_self_confidence,
            "llm_token_confidence": r.llm_token_confidence,
        }
        for r in results
    ]
    columns = [
        "row_id",
        "text",
        "domain",
        "confidence",
        "top_candidates",
        "label_source",
        "label_origin",
        "status",
        "error",
        "tier",
        "llm_self_confidence",
        "llm_token_confidence",
    ]
    floats = dict.fromkeys(["confidence", "llm_self_confidence", "llm_token_confidence"], "float64")
    return pd.DataFrame(rows, columns=columns).astype(floats)


async def label_dataframe_batched(
    df: pd.DataFrame,
    llm_client: LLMClient | None = None,
    system_prompt: str | None = None,
    fewshot: Iterable[tuple[str, str] | dict[str, str]] | None = None,
    **kw: Any,
) -> pd.DataFrame:
    """The old API on top of `LabelerAgent`: `df` (column `text`) with the label columns added.

    Legacy arguments:
        llm_client: an `LLMClient` to send requests through (its endpoint, limits, cache and
            usage meter); None builds one from the config (or none at all for model "local").
        system_prompt: extra instructions placed before the taxonomy-built prompt; the domain
            list and answer rules are always included, since only taxonomy ids can come out.
        fewshot: labelled examples, (text, domain) pairs or {"text", "domain"} dicts; they are
            used like verified labels (local-model training data and few-shot candidates).
    Keyword arguments: `taxonomy` (a `Taxonomy` or a path; default APP_TAXONOMY_PATH),
    `model_override`, `usage`, `progress_callback`, and any `LabelerConfig` field.

    Returns a copy of `df` with `row_id` (added when missing) and the label columns `domain`,
    `confidence`, `top_candidates`, `label_source`, `status`, `error`, `tier` (they replace
    input columns of the same names).
    """
    taxonomy = kw.pop("taxonomy", None) or get_settings().app.taxonomy_path
    if not isinstance(taxonomy, Taxonomy):
        taxonomy = Taxonomy.load(taxonomy)
    agent_args = {
        name: kw.pop(name)
        for name in ("model_override", "usage", "progress_callback")
        if name in kw
    }
    if llm_client is not None:
        kw.setdefault("model", llm_client.endpoint.model)
    examples = [
        (item["text"], item["domain"]) if isinstance(item, dict) else tuple(item)
        for item in fewshot or ()
    ]
    agent = LabelerAgent(
        LabelerConfig(**kw), taxonomy, verified=examples, llm_client=llm_client, **agent_args
    )
    agent.extra_instructions = system_prompt or ""
    try:
        results = await agent.classify_dataframe(df)
    finally:
        await agent.aclose()
    labels = results_to_frame(results).drop(columns=["text"])
    out = df.drop(columns=[c for c in labels.columns if c in df.columns]).reset_index(drop=True)
    return pd.concat([out, labels], axis=1)
