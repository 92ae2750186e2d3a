"""The one OpenAI-compatible LLM client layer both agents use.

- `LLMClient` (client.py): ``await client.run(system_prompt=, user_prompt=, output_type=,
  cache_namespace=) -> LLMReply[T]``: cache, concurrency cap, rate limit, budget, retries,
  fallback; raises `LLMCallFailed` or `BudgetExhausted`.
- endpoint.py: output modes (``tool``, ``forced_tool``, ``json_schema``, ``json_object``,
  ``prompted``; ``auto`` per endpoint kind), `build_http_client` and `build_model` for an
  `LLMEndpoint`.
- `ResponseCache` (cache.py): persistent SQLite cache of answers with a TTL.
- `UsageMeter` (usage.py): requests, tokens, cost, cache hits, failures; the per-run budget.
"""

from esk_pipeline.pipeline.llm.cache import ResponseCache
from esk_pipeline.pipeline.llm.client import LLMClient
from esk_pipeline.pipeline.llm.endpoint import AgentEndpointConfig, endpoint_kind
from esk_pipeline.pipeline.llm.failures import LLMCallFailed
from esk_pipeline.pipeline.llm.reply import CallUsage, LLMReply
from esk_pipeline.pipeline.llm.usage import BudgetExhausted, LLMBudget, UsageMeter

__all__ = [
    "AgentEndpointConfig",
    "BudgetExhausted",
    "CallUsage",
    "LLMBudget",
    "LLMCallFailed",
    "LLMClient",
    "LLMReply",
    "ResponseCache",
    "UsageMeter",
    "endpoint_kind",
]
