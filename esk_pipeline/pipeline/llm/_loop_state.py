"""What an `LLMClient` binds to one event loop: call slots, the rate limiter, HTTP clients.

Asyncio primitives and HTTP connection pools belong to one event loop, so the client rebuilds
them when it is used from a new loop (e.g. successive ``asyncio.run`` calls); use one client
from one loop at a time. A loop's HTTP connections are closed by `aclose` or, at the latest, when
``asyncio.run`` (or any runner that cancels leftover tasks) shuts that loop down: a small task
waits for that cancellation, since once the loop is closed its sockets can no longer be closed
cleanly.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from aiolimiter import AsyncLimiter
from openai import DefaultAsyncHttpxClient
from pydantic_ai.models import Model

# Strong references to the loop-shutdown tasks: the event loop holds its tasks only weakly.
LOOP_CLOSERS: set[asyncio.Task[None]] = set()


@dataclass
class LoopState:
    """Everything bound to one event loop: call slots, rate limiter, the HTTP client, models."""

    loop: asyncio.AbstractEventLoop
    semaphore: asyncio.Semaphore
    limiter: AsyncLimiter | None
    http_client: DefaultAsyncHttpxClient | None = None  # shared by `models`
    models: dict[str, Model] = field(default_factory=dict)
    closer: asyncio.Task[None] | None = None  # runs `close_at_loop_shutdown`

    async def close_models(self) -> None:
        """Close the models' HTTP connections (once: the client and models are forgotten)."""
        http_client, self.http_client, self.models = self.http_client, None, {}
        if http_client is not None:
            await http_client.aclose()

    async def close_at_loop_shutdown(self) -> None:
        """Wait until cancelled (``asyncio.run`` cancels leftover tasks before it closes the
        loop), then close the HTTP clients while the loop can still run their callbacks."""
        try:
            await self.loop.create_future()
        finally:
            await self.close_models()
