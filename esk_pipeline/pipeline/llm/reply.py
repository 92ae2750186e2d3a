"""What one `LLMClient.run` call gives back: the validated answer and what it cost."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Generic, TypeVar

from pydantic import BaseModel

__all__ = ["CallUsage", "LLMReply", "TokenLogprob"]

T = TypeVar("T", bound=BaseModel)


class CallUsage(BaseModel):
    """What one `LLMClient.run` call cost: HTTP requests sent (retries included) and tokens."""

    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0

    def add(self, other: CallUsage) -> None:
        self.requests += other.requests
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens


TokenLogprob = tuple[str, float]  # (token text, natural log of its probability)


@dataclass(frozen=True)
class LLMReply(Generic[T]):
    """A validated answer: `output`, the `model` that gave it, whether it came from the cache,
    this call's `usage` (zero for a cache hit) and, when asked for and returned, the answer
    text's token `logprobs` in order (cached with the answer)."""

    output: T
    model: str
    cached: bool
    usage: CallUsage = field(default_factory=CallUsage)
    logprobs: list[TokenLogprob] | None = None
