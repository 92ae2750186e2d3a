"""What one `LLMClient.run` call asks, and the answer as the response cache keeps it."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ValidationError
from pydantic_ai.messages import ModelMessage, ModelResponse
from pydantic_ai.settings import ModelSettings

from esk_pipeline.pipeline.llm.reply import LLMReply, TokenLogprob

T = TypeVar("T", bound=BaseModel)


@dataclass(frozen=True)
class Question(Generic[T]):
    """What one call asks: everything that decides its answer (and its cache key)."""

    system_prompt: str
    user_prompt: str
    output_type: type[T]
    output_template: str | Literal[False] | None = None
    logprobs: bool = False
    temperature: float | None = None

    def run_settings(self, *, logprobs: bool) -> ModelSettings:
        settings = ModelSettings()
        if logprobs:
            # top_logprobs too: llama-cpp-python returns no logprobs for a chat without it.
            settings["openai_logprobs"] = True
            settings["openai_top_logprobs"] = 1
        if self.temperature is not None:
            settings["temperature"] = self.temperature
        return settings


def token_logprobs(messages: list[ModelMessage]) -> list[TokenLogprob] | None:
    """The last response's token logprobs (pydantic-ai keeps them in its provider details)."""
    responses = [message for message in messages if isinstance(message, ModelResponse)]
    details = (responses[-1].provider_details or {}) if responses else {}
    logprobs = details.get("logprobs")
    if not logprobs:
        return None
    return [(str(entry["token"]), float(entry["logprob"])) for entry in logprobs]


def reported_tokens(messages: list[ModelMessage]) -> tuple[int, int]:
    """The input and output tokens the server reported over the responses in `messages`."""
    responses = [message for message in messages if isinstance(message, ModelResponse)]
    return (
        sum(response.usage.input_tokens for response in responses),
        sum(response.usage.output_tokens for response in responses),
    )


@functools.cache
def schema_json(output_type: type[BaseModel]) -> str:
    return json.dumps(output_type.model_json_schema(), sort_keys=True)


def cache_entry(model: str, output: BaseModel, logprobs: list[TokenLogprob] | None) -> str:
    """An answer as the cache stores it: the model that gave it, the output, its logprobs."""
    entry: dict[str, Any] = {"model": model, "output": output.model_dump(mode="json")}
    if logprobs is not None:
        entry["logprobs"] = logprobs
    return json.dumps(entry, ensure_ascii=False)


def reply_from_cache(raw: str, output_type: type[T]) -> LLMReply[T] | None:
    """The cached reply, or None for an entry that no longer reads (the call asks again and
    overwrites it)."""
    try:
        stored = json.loads(raw)
        output = output_type.model_validate(stored["output"])
        model = stored["model"]
        logprobs = stored.get("logprobs")
        token_logprobs = None if logprobs is None else [(t, float(lp)) for t, lp in logprobs]
    except (ValueError, KeyError, TypeError, ValidationError):
        return None
    if not isinstance(model, str):
        return None
    return LLMReply(output=output, model=model, cached=True, logprobs=token_logprobs)
