"""One labelling run through the cascade, cheapest tier first.

1. The offline `LocalModel` scores every text; a label with confidence >=
   `local_accept_threshold` is accepted (tier "local") without an LLM call. With no LLM
   configured, the local label stands whatever its confidence (low ones go to review).
2. The rest go to the LLM, `batch_size` texts per request, unless the per-text result cache
   already holds them (one batched `get_many` per chunk, before its batches are built).
3. A request's unsettled texts (skipped, conflicting, outside the taxonomy: `_answers`) are asked
   again in a follow-up, renumbered, as a new question. A reply that came from the client's
   cache does not use up a round. A request that fails for good on invalid output is split in
   halves, so one poisonous text cannot fail its whole batch; after `max_retries` such rounds
   an item is "failed" with the reason. Any other failure (HTTP errors, timeouts, an
   unreachable server) fails its items at once: smaller requests would only fail again. A spent
   run budget makes the rest "deferred" (the next run picks them up). Nothing is dropped or
   duplicated: one outcome per key.

Pipelining: with an LLM, the local model scores the texts `LOCAL_CHUNK` at a time, in a worker
thread, and full batches of what it leaves are sent at once, so requests start after the first
chunk, not after the whole frame, and the rest is scored while they are in flight. Without one,
it scores `LOCAL_ALONE_CHUNK` texts at a time, so memory stays bounded whatever a day's size.

Caches (both in the shared `ResponseCache` file under `cache_dir`): the LLM client caches each
batch prompt's answer for the cache's TTL (its key covers model, endpoint, output mode, prompts,
schema), except a reply that settled nothing (asking again must reach the server). The per-text
result cache lets a re-run send zero requests for texts already answered, even when its batches
come out composed differently or human decisions were added since:

- Its key is the question asked about the text: `key_scope` (prompt version, model, endpoint,
  output mode, logprobs, taxonomy fingerprint, extra instructions) and the normalised text.
  Not the few-shot pool nor the local model, which both change with every decision.
- An entry holds the LLM's own answer (`LLMAnswer`) and digests of the few-shot examples its
  request showed (static and dynamic). It counts only while each of them (by normalised text)
  is still in the pool with the same domain: a removed or relabelled example changed the
  question, so the text is asked again; an example added since does not undo an answer. The
  prompt shows nothing else that decisions change: no local-model hints (they only pick which
  examples are shown).
- A hit's label is rebuilt by `llm_outcome` against the local model's current prediction, as a
  fresh answer's is, so its hints and agreement are today's.
- Entries are written after each request (a crash loses at most the batches in flight) and are
  lasting (no TTL: the check above, not age, says when one is stale), except the fallback
  model's, which expire with the TTL so the model is asked again once it is back. An entry of
  another format (no recorded examples) is a miss.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

from pydantic import BaseModel, ValidationError
from scipy.sparse import csr_matrix, vstack

from esk_pipeline.pipeline.labeler._answers import (
    LLMAnswer,
    llm_outcome,
    match_answers,
    unlabeled_outcomes,
)
from esk_pipeline.pipeline.labeler._fewshot import FewShotPool, example_digest
from esk_pipeline.pipeline.labeler._prompts import question_hash, short_ids, user_prompt
from esk_pipeline.pipeline.labeler.models import LabelerConfig, Outcome, Status, local_outcome
from esk_pipeline.pipeline.llm import (
    BudgetExhausted,
    LLMCallFailed,
    LLMClient,
    LLMReply,
    ResponseCache,
)
from esk_pipeline.pipeline.local_model import LocalModel, Prediction
from esk_pipeline.pipeline.progress import ProgressReporter
from esk_pipeline.pipeline.taxonomy import Taxonomy

LOCAL_CHUNK = 512  # texts the local model scores at a time when an LLM takes the rest
# Texts it scores at a time with no LLM: bounds the feature matrices whatever a day's size.
LOCAL_ALONE_CHUNK = 8192
_CACHE_NAMESPACE = "labeler"
_TEXT_KEY_PREFIX = "labeler:text:"
_TEMPERATURE = 0.0  # one best answer per question; a follow-up is a different question


class _TextEntry(BaseModel):
    """One text's per-text cache entry: the LLM's answer and the examples it was shown."""

    answer: LLMAnswer
    shown: list[str]  # `example_digest`s of the few-shot examples the answering request showed


class Cascade:
    """One `classify_dataframe` call's texts through the tiers (`LabelerAgent` builds it).

    Args:
        texts: normalised key -> the text as given (one per unique key).
        config: the labeler's config (thresholds, batch size, retries, model name).
        taxonomy: the domains that can come out.
        local_model: the fitted first tier.
        client: the LLM tier's client; None labels with the local model alone.
        cache: the per-text result cache, or None.
        system_prompt: the static part of every request.
        fewshot: the pool the requests' dynamic examples come from.
        static_examples: the examples the system prompt shows (none with dynamic few-shot).
        key_scope: what every per-text cache key hashes besides the text.
        answer_type: the output type for a batch of a given size.
    """

    def __init__(
        self,
        texts: dict[str, str],
        *,
        config: LabelerConfig,
        taxonomy: Taxonomy,
        local_model: LocalModel,
        client: LLMClient | None,
        cache: ResponseCache | None,
        system_prompt: str,
        fewshot: FewShotPool,
        static_examples: Sequence[tuple[str, str]],
        key_scope: Sequence[str],
        answer_type: Callable[[int], type[BaseModel]],
    ) -> None:
        self.texts = texts
        self.config = config
        self.taxonomy = taxonomy
        self.local_model = local_model
        self.client = client
        self.cache = cache
        self.system_prompt = system_prompt
        self.fewshot = fewshot
        self._static_shown = [example_digest(*example) for example in static_examples]
        self.key_scope = list(key_scope)
        self.answer_type = answer_type
        self.predictions: dict[str, Prediction] = {}  # hints if the LLM fails
        self._chunks: list[csr_matrix] = []  # the local model's unit vectors, chunk by chunk
        self._places: dict[str, tuple[int, int]] = {}  # key -> (chunk, row)

    async def run(self, keys: list[str], progress: ProgressReporter) -> dict[str, Outcome]:
        """Outcomes for `keys` (see the module docstring for the pipelining)."""
        chunk_size = LOCAL_CHUNK if self.client is not None else LOCAL_ALONE_CHUNK
        size = self.config.batch_size
        # Batches enter only a little ahead of the client's free slots, so preparing a prompt
        # (few-shot search) overlaps the requests in flight instead of delaying them.
        gate = asyncio.Semaphore(2 * self.config.concurrency)
        outcomes: dict[str, Outcome] = {}
        waiting: list[str] = []  # for the LLM, not in a batch yet
        requests: list[asyncio.Task[dict[str, Outcome]]] = []
        try:
            for start in range(0, len(keys), chunk_size):
                settled = len(outcomes)
                waiting += await self._local_pass(keys[start : start + chunk_size], outcomes)
                progress.advance(len(outcomes) - settled)
                last_chunk = start + chunk_size >= len(keys)
                while len(waiting) >= size or (last_chunk and waiting):
                    batch, waiting = waiting[:size], waiting[size:]
                    requests.append(asyncio.create_task(self._run_batch(batch, gate, progress)))
            for answered in await asyncio.gather(*requests):
                outcomes.update(answered)
        except BaseException:  # an error or a cancellation: no request is left running
            for request in requests:
                request.cancel()
            await asyncio.gather(*requests, return_exceptions=True)
            raise
        return outcomes

    # -- the local tier ---------------------------------------------------------------

    async def _local_pass(self, keys: list[str], outcomes: dict[str, Outcome]) -> list[str]:
        """Score `keys` with the local model; put in `outcomes` what needs no request (accepted
        local labels, per-text cache hits). Returns the keys left for the LLM."""
        # In a worker thread, so the event loop goes on serving the requests in flight (and an
        # API caller's other requests) while the model scores.
        texts = [self.texts[k] for k in keys]
        if self.client is None:  # the local label stands: no hints or few-shot vectors to keep
            local = await asyncio.to_thread(self.local_model.predict, texts)
            outcomes.update(zip(keys, map(local_outcome, local), strict=True))
            return []
        local, vectors = await asyncio.to_thread(self.local_model.predict_with_vectors, texts)
        self._add_chunk(keys, local, vectors)
        asked = []
        for key, prediction in zip(keys, local, strict=True):
            if prediction[1] >= self.config.local_accept_threshold:
                outcomes[key] = local_outcome(prediction)
            else:
                asked.append(key)
        outcomes.update(self._cached_outcomes(asked))
        return [key for key in asked if key not in outcomes]

    def _add_chunk(
        self, keys: Sequence[str], predictions: Sequence[Prediction], vectors: csr_matrix
    ) -> None:
        """Record one chunk's local predictions and feature vectors (row i is keys[i])."""
        self.predictions.update(zip(keys, predictions, strict=True))
        chunk = len(self._chunks)
        self._chunks.append(vectors)
        self._places.update((key, (chunk, row)) for row, key in enumerate(keys))

    def _vectors_of(self, keys: Sequence[str]) -> csr_matrix:
        """The feature vectors of `keys` (for the few-shot search), grouped by chunk."""
        rows: dict[int, list[int]] = {}
        for key in keys:
            chunk, row = self._places[key]
            rows.setdefault(chunk, []).append(row)
        parts = [self._chunks[chunk][chunk_rows] for chunk, chunk_rows in rows.items()]
        return parts[0] if len(parts) == 1 else vstack(parts, format="csr")

    # -- the per-text cache -------------------------------------------------------------

    def _text_cache_key(self, key: str) -> str:
        return _TEXT_KEY_PREFIX + question_hash([*self.key_scope, key])

    def _cached_outcomes(self, keys: list[str]) -> dict[str, Outcome]:
        """Per-text cache hits among `keys`, in one batched look-up."""
        if self.cache is None or not keys:
            return {}
        cache_keys = {key: self._text_cache_key(key) for key in keys}
        stored = self.cache.get_many(list(cache_keys.values()))
        found: dict[str, Outcome] = {}
        for key, cache_key in cache_keys.items():
            try:
                entry = _TextEntry.model_validate_json(stored[cache_key])
            except (KeyError, ValidationError):  # absent, or unreadable: ask again
                continue
            if self.fewshot.holds(entry.shown):  # else an example it was shown has changed
                found[key] = llm_outcome(entry.answer, self.predictions[key], cached=True)
        return found

    # -- the LLM tier ---------------------------------------------------------------------

    async def _run_batch(
        self, batch: list[str], gate: asyncio.Semaphore, progress: ProgressReporter
    ) -> dict[str, Outcome]:
        async with gate:
            answered = await self._ask(batch, self.config.max_retries, attempt=1)
        progress.advance(len(batch))
        return answered

    async def _ask(self, keys: list[str], rounds_left: int, attempt: int) -> dict[str, Outcome]:
        """One request for `keys`, then follow-ups for what it did not settle (see module doc)."""
        assert self.client is not None
        ids = dict(zip(short_ids(len(keys)), keys, strict=True))
        examples = self.fewshot.for_request(
            self._vectors_of(keys), [self.predictions[k] for k in keys]
        )
        texts = {s: self.texts[k] for s, k in ids.items()}

        def settles_any(output: Any) -> bool:
            unsent = LLMReply(output=output, model=self.config.model, cached=False)
            return bool(self._match(ids, output.items, unsent)[0])

        try:
            reply = await self.client.run(
                system_prompt=self.system_prompt,
                user_prompt=user_prompt(texts, examples, attempt),
                output_type=self.answer_type(len(keys)),
                cache_namespace=_CACHE_NAMESPACE,
                output_template=False,  # the system prompt says the format
                logprobs=self.config.token_logprobs,
                temperature=_TEMPERATURE,
                cacheable=settles_any,
            )
        except BudgetExhausted as exc:
            return self._unlabeled(keys, "deferred", str(exc))
        except LLMCallFailed as exc:
            # Invalid output after the client's retries: split, so one text that keeps getting
            # a bad answer fails alone. HTTP, connection and timeout errors would only fail again.
            if rounds_left == 0 or len(keys) == 1 or not exc.invalid_output:
                return self._unlabeled(keys, "failed", str(exc))
            half = (len(keys) + 1) // 2
            parts = await asyncio.gather(
                self._ask(keys[:half], rounds_left - 1, attempt + 1),
                self._ask(keys[half:], rounds_left - 1, attempt + 1),
            )
            return {**parts[0], **parts[1]}

        answers, reasons = self._match(ids, reply.output.items, reply)
        if self.cache is not None and answers:
            shown = [*self._static_shown, *(example_digest(*example) for example in examples)]
            entries = {
                self._text_cache_key(key): _TextEntry(answer=answer, shown=shown).model_dump_json()
                for key, answer in answers.items()
            }
            # A fallback's answer stands in while the model is down: it expires with the TTL.
            self.cache.put_many(entries.items(), lasting=reply.model == self.config.model)
        settled = {
            key: llm_outcome(answer, self.predictions[key], cached=reply.cached)
            for key, answer in answers.items()
        }
        unsettled = [key for key in keys if key not in settled]
        if not unsettled:
            return settled
        # A cache hit sent nothing, so it uses up no round (it settled something, or it would
        # not have been cached: the follow-up is smaller, and the recursion ends).
        spent = 0 if reply.cached and settled else 1
        if rounds_left - spent < 0:
            failed = {key: self._unlabeled([key], "failed", reasons[key])[key] for key in unsettled}
            return {**settled, **failed}
        follow_up = await self._ask(unsettled, rounds_left - spent, attempt + spent)
        return {**settled, **follow_up}

    def _match(
        self, ids: dict[str, str], items: Sequence[Any], reply: LLMReply[Any]
    ) -> tuple[dict[str, LLMAnswer], dict[str, str]]:
        return match_answers(ids, items, reply, self.taxonomy)

    def _unlabeled(self, keys: list[str], status: Status, reason: str) -> dict[str, Outcome]:
        return unlabeled_outcomes(keys, self.predictions, self.config.model, status, reason)
