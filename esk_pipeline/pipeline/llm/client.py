"""`LLMClient`: the one call path to an OpenAI-compatible LLM that both agents use.

One call = one structured answer: ``await client.run(system_prompt=..., user_prompt=...,
output_type=MyModel, cache_namespace="labeler")`` returns an `LLMReply` holding a validated
``MyModel``. Optional per call: ``logprobs=True`` asks for the answer's token log-probabilities
(`LLMReply.logprobs`, None where the endpoint returns none, e.g. for tool-call arguments; an
endpoint that refuses them with an error naming logprobs is asked again without them, and not
asked for them again: `logprobs_supported`), ``temperature``, ``output_template`` (what the
prompted output modes put in the instructions instead of pydantic-ai's schema dump; False for
nothing, when the system prompt already says the format) and ``cacheable`` (an answer it
rejects is returned, not cached, so asking again reaches the server). Around each call:

1. the persistent cache (`ResponseCache`): a hit returns at once and sends nothing;
2. bounded concurrency and a rate limit (aiolimiter, `rate_limit` requests per second, spaced
   evenly). At most `concurrency` requests are in flight: that is the size of the HTTP
   connection pool all the client's models share, so building a request and parsing an answer
   happen outside the bound, and an ``asyncio.Semaphore`` lets as many calls again be in those
   stages (with a test model, which has no pool, the semaphore alone bounds calls to
   `concurrency`). A call takes its rate-limit token inside the semaphore, so while the pool
   is full a token can be taken up to one request's time before its request leaves; when the
   rate is what binds, the pool has free connections and requests leave as the tokens come;
3. the budget (`UsageMeter.begin_request` raises `BudgetExhausted` before a request starts; it
   propagates unwrapped, so the caller can defer the rest of its work to the next run);
4. the request through pydantic-ai, in the endpoint's output mode (see `endpoint.py`);
5. retries (tenacity) with exponential backoff and jitter, only for errors that may pass:
   timeouts and connection errors, HTTP 408/409/429 and 5xx, and invalid output (JSON that does
   not parse or does not validate). A 429's ``Retry-After`` is honoured, capped at
   `retry_after_cap` seconds. Other 4xx (400, 401, 403, 404, ...) fail at once;
6. the endpoint's ``fallback_model``, if any, once the primary failed, with the same retries.

A call that fails for good raises `LLMCallFailed`, saying why and after how many attempts, never
with the API key. The openai SDK's and pydantic-ai's own retries are off: this policy is the one.

pydantic-ai's own `UsageLimits` and `FallbackModel` are not used: `UsageLimits` bounds one agent
run, while the budget here is one run of the pipeline, shared by the labeler's and the
augmenter's concurrent calls and checked before a request starts (`UsageMeter`); and
`FallbackModel` moves to the next model on the first error, where this client first retries
the primary with backoff and Retry-After, counts attempts per model for `LLMCallFailed`, and
caches an answer under the model that gave it.

Use one client from one event loop at a time (see `_loop_state` for a new loop).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Awaitable, Callable
from typing import Any, Literal, TypeVar

from aiolimiter import AsyncLimiter
from pydantic import BaseModel
from pydantic_ai import Agent, capture_run_messages
from pydantic_ai.exceptions import ModelHTTPError
from pydantic_ai.messages import ModelMessage
from pydantic_ai.models import Model
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from esk_pipeline.pipeline.connections import LLMEndpoint
from esk_pipeline.pipeline.llm._loop_state import LOOP_CLOSERS, LoopState
from esk_pipeline.pipeline.llm._question import (
    Question,
    cache_entry,
    reply_from_cache,
    reported_tokens,
    schema_json,
    token_logprobs,
)
from esk_pipeline.pipeline.llm.cache import ResponseCache
from esk_pipeline.pipeline.llm.endpoint import (
    ResolvedOutputMode,
    build_http_client,
    build_model,
    endpoint_kind,
    output_recipe,
    resolve_output_mode,
)
from esk_pipeline.pipeline.llm.failures import LLMCallFailed, call_failure, is_retryable
from esk_pipeline.pipeline.llm.reply import CallUsage, LLMReply, TokenLogprob
from esk_pipeline.pipeline.llm.usage import BudgetExhausted, UsageMeter

__all__ = ["LLMClient"]

T = TypeVar("T", bound=BaseModel)


class LLMClient:
    """Structured LLM calls with caching, rate limit, concurrency cap, retries and fallback."""

    def __init__(
        self,
        endpoint: LLMEndpoint,
        *,
        rate_limit: float | None = None,
        concurrency: int = 4,
        max_retries: int = 3,
        cache: ResponseCache | None = None,
        usage: UsageMeter | None = None,
        model_override: Model | None = None,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
        retry_after_cap: float = 60.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        """Args:
        endpoint: the model, base URL, key, output mode, fallback and timeout to use.
        rate_limit: requests per second across this client; None or 0 means unlimited.
        concurrency: requests in flight at most.
        max_retries: retries after the first attempt, per model (so ``1 + max_retries`` attempts).
        cache: answers are read from and written to it; None disables caching.
        usage: the run's meter (shared between clients to share a budget); a fresh one if None.
        model_override: a pydantic-ai model (``TestModel``, ``FunctionModel``) answering instead
            of the endpoint, for tests; the fallback model is not used with it.
        backoff_initial, backoff_max: exponential backoff bounds in seconds (jittered).
        retry_after_cap: longest ``Retry-After`` honoured, in seconds.
        sleep: how the client waits between attempts (tests pass a recorder).
        """
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.endpoint = endpoint
        self.output_mode: ResolvedOutputMode = resolve_output_mode(endpoint)
        self.rate_limit = rate_limit or None
        self.concurrency = concurrency
        self.max_retries = max_retries
        self.cache = cache
        self.usage = usage if usage is not None else UsageMeter()
        self.model_override = model_override
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.retry_after_cap = retry_after_cap
        self._sleep = sleep
        # Whether to send the logprobs a call asks for; False once the endpoint refused them.
        self.logprobs_supported = True
        self._agents: dict[tuple[type[BaseModel], str | bool | None], Agent[None, Any]] = {}
        self._state: LoopState | None = None

    def cache_key(
        self,
        *,
        system_prompt: str,
        user_prompt: str,
        output_type: type[BaseModel],
        namespace: str,
        output_template: str | Literal[False] | None = None,
        logprobs: bool = False,
        temperature: float | None = None,
    ) -> str:
        """The cache key of a call: sha256 over everything that decides its answer.

        Prompt versions, taxonomy and few-shot examples are inside the prompts, so changing any
        of them changes the key.
        """
        parts: list[Any] = [
            namespace,
            self.endpoint.model,
            endpoint_kind(self.endpoint),
            self.endpoint.api_base or "",
            self.output_mode,
            system_prompt,
            user_prompt,
            schema_json(output_type),
        ]
        # Appended only when set, so the keys of calls that use none of them stay as they were.
        options = {"template": output_template, "logprobs": logprobs, "temperature": temperature}
        if any(value not in (None, False) for value in options.values()):
            parts.append(options)
        return hashlib.sha256(json.dumps(parts, ensure_ascii=False).encode()).hexdigest()

    async def run(
        self,
        *,
        system_prompt: str,
        user_prompt: str,
        output_type: type[T],
        cache_namespace: str,
        output_template: str | Literal[False] | None = None,
        logprobs: bool = False,
        temperature: float | None = None,
        cacheable: Callable[[T], bool] | None = None,
    ) -> LLMReply[T]:
        """Ask for one `output_type` object; see the module docstring for the call path and the
        optional arguments.

        Raises:
            LLMCallFailed: the call failed for good.
            BudgetExhausted: the run's budget is spent; no request was started.
        """
        question = Question(
            system_prompt, user_prompt, output_type, output_template, logprobs, temperature
        )
        key = self.cache_key(
            system_prompt=system_prompt,
            user_prompt=user_prompt,
            output_type=output_type,
            namespace=cache_namespace,
            output_template=output_template,
            logprobs=logprobs,
            temperature=temperature,
        )
        cached = self._cached_reply(key, output_type)
        if cached is not None:
            self.usage.record_cache_hit()
            return cached

        usage = CallUsage()
        failures: list[LLMCallFailed] = []
        for model_name in self._model_names():
            try:
                output, token_logprobs = await self._run_with_retries(model_name, question, usage)
            except LLMCallFailed as failure:
                failures.append(failure)
                continue
            if self.cache is not None and (cacheable is None or cacheable(output)):
                self.cache.put(key, cache_entry(model_name, output, token_logprobs))
            return LLMReply(
                output=output,
                model=model_name,
                cached=False,
                usage=usage,
                logprobs=token_logprobs,
            )

        self.usage.record_failure()
        raise LLMCallFailed(
            "; then ".join(str(failure) for failure in failures),
            model=failures[-1].model,
            attempts=sum(failure.attempts for failure in failures),
            status_code=failures[-1].status_code,
            invalid_output=all(failure.invalid_output for failure in failures),
        ) from failures[-1].__cause__

    async def aclose(self) -> None:
        """Close the HTTP connections of the current event loop's models. Another loop's are
        left to that loop's shutdown (they cannot be closed from here)."""
        state, self._state = self._state, None
        if state is not None and state.loop is asyncio.get_running_loop():
            await state.close_models()
            if state.closer is not None:
                state.closer.cancel()  # nothing left for it; a long-lived loop need not keep it

    async def __aenter__(self) -> LLMClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def _model_names(self) -> list[str]:
        names = [self.endpoint.model]
        fallback = self.endpoint.fallback_model
        if self.model_override is None and fallback and fallback != self.endpoint.model:
            names.append(fallback)
        return names

    def _cached_reply(self, key: str, output_type: type[T]) -> LLMReply[T] | None:
        raw = self.cache.get(key) if self.cache is not None else None
        return None if raw is None else reply_from_cache(raw, output_type)

    def _loop_state(self) -> LoopState:
        loop = asyncio.get_running_loop()
        if self._state is None or self._state.loop is not loop:
            limiter = AsyncLimiter(1, 1 / self.rate_limit) if self.rate_limit else None
            # Over HTTP the connection pool bounds requests in flight (see the module doc).
            slots = self.concurrency if self.model_override is not None else 2 * self.concurrency
            self._state = LoopState(loop, asyncio.Semaphore(slots), limiter)
            self._state.closer = loop.create_task(self._state.close_at_loop_shutdown())
            LOOP_CLOSERS.add(self._state.closer)
            self._state.closer.add_done_callback(LOOP_CLOSERS.discard)
        return self._state

    def _agent(
        self, output_type: type[BaseModel], output_template: str | Literal[False] | None
    ) -> Agent[None, Any]:
        """One agent per output type (and template): pydantic-ai builds its output schema once,
        at creation, instead of on every request (measurable client time inside a concurrency
        slot)."""
        agent_key = (output_type, output_template)
        if agent_key not in self._agents:
            recipe = output_recipe(
                output_type,
                self.output_mode,
                template=output_template,
                prompt_cache=endpoint_kind(self.endpoint) == "compatible",
            )
            self._agents[agent_key] = Agent(
                output_type=recipe.output_spec, model_settings=recipe.model_settings, retries=0
            )
        return self._agents[agent_key]

    def _model(self, state: LoopState, model_name: str) -> Model:
        if self.model_override is not None:
            return self.model_override
        if state.http_client is None:
            state.http_client = build_http_client(self.endpoint, max_connections=self.concurrency)
        if model_name not in state.models:
            state.models[model_name] = build_model(
                self.endpoint, http_client=state.http_client, model_name=model_name
            )
        return state.models[model_name]

    def _wait(self, retry_state: RetryCallState) -> float:
        """Backoff before the next attempt: the server's Retry-After if it sent one, capped;
        else exponential with jitter."""
        error = retry_state.outcome.exception() if retry_state.outcome else None
        retry_after = getattr(error, "retry_after", None)
        if retry_after is not None:
            return min(float(retry_after), self.retry_after_cap)
        backoff = wait_exponential_jitter(
            multiplier=self.backoff_initial, max=self.backoff_max, jitter=self.backoff_initial
        )
        return backoff(retry_state)

    async def _run_with_retries(
        self, model_name: str, question: Question[T], usage: CallUsage
    ) -> tuple[T, list[TokenLogprob] | None]:
        attempts = 0
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.max_retries + 1),
            wait=self._wait,
            sleep=self._sleep,
            retry=retry_if_exception(is_retryable),
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    attempts += 1
                    return await self._attempt(model_name, question, usage)
        except BudgetExhausted:
            raise
        except Exception as error:
            raise call_failure(model_name, attempts, error, self._api_key()) from error
        raise AssertionError("unreachable: tenacity either returns or re-raises")

    async def _attempt(
        self, model_name: str, question: Question[T], usage: CallUsage
    ) -> tuple[T, list[TokenLogprob] | None]:
        """One request: take a call slot and a rate-limit token, check the budget, send.
        Returns the validated output and, if asked for and returned, its token logprobs."""
        state = self._loop_state()
        agent = self._agent(question.output_type, question.output_template)
        async with state.semaphore:
            if state.limiter is not None:
                await state.limiter.acquire()
            with_logprobs = question.logprobs and self.logprobs_supported
            try:
                result, messages = await self._send(
                    agent, state, model_name, question, usage, with_logprobs
                )
            except ModelHTTPError as error:
                if not (with_logprobs and "logprobs" in str(error).lower()):
                    raise
                # The server refuses logprobs (llama-cpp-python without --logits_all answers
                # HTTP 500): ask again without them, and stop asking this endpoint for them.
                self.logprobs_supported = False
                result, messages = await self._send(
                    agent, state, model_name, question, usage, False
                )
        output = question.output_type.model_validate(result.output)
        return output, token_logprobs(messages) if with_logprobs else None

    async def _send(
        self,
        agent: Agent[None, Any],
        state: LoopState,
        model_name: str,
        question: Question[Any],
        usage: CallUsage,
        logprobs: bool,
    ) -> tuple[Any, list[ModelMessage]]:
        """Send one request (inside a call slot); the run's result and its messages."""
        self.usage.begin_request()
        usage.requests += 1
        with capture_run_messages() as messages:
            try:
                result = await agent.run(
                    question.user_prompt,
                    instructions=question.system_prompt,
                    model=self._model(state, model_name),
                    model_settings=question.run_settings(logprobs=logprobs) or None,
                )
            finally:
                self._record_tokens(messages, usage)
        return result, messages

    def _api_key(self) -> str:
        return self.endpoint.api_key.get_secret_value() if self.endpoint.api_key else ""

    def _record_tokens(self, messages: list[ModelMessage], usage: CallUsage) -> None:
        """Count the tokens the server reported, for failed attempts too (they are billed)."""
        input_tokens, output_tokens = reported_tokens(messages)
        usage.input_tokens += input_tokens
        usage.output_tokens += output_tokens
        self.usage.record_tokens(input_tokens, output_tokens)
