"""How an LLM call fails: which errors are worth asking again, and the error a caller sees.

`LLMCallFailed` says which model failed, after how many attempts and why; it never holds an
API key (the configured one, or any OpenAI-style key a server echoes back).
"""

from __future__ import annotations

import re

from pydantic import ValidationError
from pydantic_ai.exceptions import (
    ModelAPIError,
    ModelHTTPError,
    ModelRequestRejectedError,
    UnexpectedModelBehavior,
)

__all__ = ["LLMCallFailed", "call_failure", "is_retryable"]

_RETRYABLE_STATUS = frozenset({408, 409, 429})
_MAX_REASON_CHARS = 600
# OpenAI-style secret keys, redacted from error reasons even when not the configured key (a
# server may echo another one back).
_SECRET_KEY_PATTERN = re.compile(r"sk-[A-Za-z0-9_-]{16,}")
_REDACTED = "**********"


class LLMCallFailed(RuntimeError):
    """A call failed for good: a non-retryable error, or retries (and fallback) exhausted.

    The message says which model, after how many attempts and why; it never holds the API key.
    `invalid_output` is True when the answers came back but did not parse or validate (asking
    for less may help), False for HTTP, connection and timeout errors (asking again would not).
    """

    def __init__(
        self,
        message: str,
        *,
        model: str,
        attempts: int,
        status_code: int | None = None,
        invalid_output: bool = False,
    ) -> None:
        super().__init__(message)
        self.model = model
        self.attempts = attempts
        self.status_code = status_code
        self.invalid_output = invalid_output


def call_failure(model_name: str, attempts: int, error: Exception, api_key: str) -> LLMCallFailed:
    """The `LLMCallFailed` for a call's last error: why, after how many attempts, no key."""
    reason = f"{type(error).__name__}: {error}"
    if isinstance(error, UnexpectedModelBehavior) and error.__cause__ is not None:
        # pydantic-ai's message only says output retries ran out; the cause says why.
        reason += f" ({error.__cause__})"
    if api_key:
        reason = reason.replace(api_key, _REDACTED)
    # Redact before truncating: a cut through a key would leave its start unrecognised.
    reason = _SECRET_KEY_PATTERN.sub(_REDACTED, reason)
    if len(reason) > _MAX_REASON_CHARS:
        reason = reason[:_MAX_REASON_CHARS] + "..."
    kind = "retryable" if is_retryable(error) else "not retryable"
    return LLMCallFailed(
        f"LLM call to {model_name!r} failed after {attempts} attempt(s) ({kind}): {reason}",
        model=model_name,
        attempts=attempts,
        status_code=error.status_code if isinstance(error, ModelHTTPError) else None,
        invalid_output=isinstance(error, UnexpectedModelBehavior | ValidationError),
    )


def is_retryable(error: BaseException) -> bool:
    """Whether sending the same request again may succeed."""
    if isinstance(error, ModelHTTPError):
        return error.status_code in _RETRYABLE_STATUS or error.status_code >= 500
    if isinstance(error, ModelRequestRejectedError):
        return False
    # Connection errors, timeouts, undecodable bodies; invalid or unparseable structured output.
    return isinstance(error, ModelAPIError | UnexpectedModelBehavior | ValidationError)
