"""Turn a configured `LLMEndpoint` into a pydantic-ai model and a structured-output recipe.

Every agent asks the LLM for one pydantic object per call. How that object is requested differs
between servers, so it is an explicit *output mode*:

- ``"tool"``: pydantic-ai's default: the schema is an output tool and the request says
  ``tool_choice="required"``. Right for OpenAI's own API.
- ``"forced_tool"``: the same tool, forced by name
  (``tool_choice={"type": "function", "function": {"name": "final_result"}}``). llama.cpp
  ignores ``"required"`` but honours a tool forced by name with grammar-constrained arguments.
  pydantic-ai has no setting for this with a single tool (``tool_choice=[name]`` collapses to
  ``"required"``), so `build_model` uses a small `OpenAIChatModel` subclass for this mode.
- ``"json_schema"``: pydantic-ai's ``NativeOutput``: ``response_format={"type": "json_schema"}``.
  OpenAI, vLLM and LM Studio accept it; llama.cpp answers HTTP 500.
- ``"json_object"``: ``PromptedOutput`` (the schema is in the instructions) plus
  ``response_format={"type": "json_object", "schema": <schema>}`` sent via ``extra_body``.
  llama.cpp turns the schema into a grammar (always schema-valid); servers that do not know the
  ``schema`` key (vLLM, Ollama) still force valid JSON and read the schema from the prompt.
- ``"prompted"``: ``PromptedOutput`` alone: the schema in the instructions, nothing enforced by
  the server (on OpenAI's own API pydantic-ai adds ``{"type": "json_object"}``). The last
  resort for servers without any structured-output support.

``"auto"`` resolves per endpoint kind: OpenAI's own API (no ``api_base`` or an ``api.openai.com``
URL) gets ``"tool"``; any other base URL is taken to be a local OpenAI-compatible server
(llama.cpp, Ollama, vLLM, LM Studio) and gets ``"json_object"``, the one mode all four accept
that llama.cpp also grammar-constrains. Whatever the mode, pydantic-ai validates the answer against
the pydantic output type, and `LLMClient` retries invalid answers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlparse

from openai import DEFAULT_CONNECTION_LIMITS, AsyncOpenAI, DefaultAsyncHttpxClient, Timeout
from pydantic import BaseModel
from pydantic_ai import NativeOutput, PromptedOutput, ToolOutput
from pydantic_ai.models.openai import OpenAIChatModel
from pydantic_ai.output import OutputSpec
from pydantic_ai.profiles import ModelProfile
from pydantic_ai.providers.openai import OpenAIProvider
from pydantic_ai.settings import ModelSettings

from esk_pipeline.pipeline.connections import LLMEndpoint

__all__ = [
    "OUTPUT_TOOL_NAME",
    "AgentEndpointConfig",
    "EndpointKind",
    "OutputRecipe",
    "ResolvedOutputMode",
    "build_http_client",
    "build_model",
    "endpoint_kind",
    "output_recipe",
    "resolve_output_mode",
]

ResolvedOutputMode = Literal["tool", "forced_tool", "json_schema", "json_object", "prompted"]
EndpointKind = Literal["openai", "compatible"]

OUTPUT_TOOL_NAME = "final_result"
_OPENAI_HOST = "api.openai.com"


def endpoint_kind(endpoint: LLMEndpoint) -> EndpointKind:
    """``"openai"`` for OpenAI's own API, ``"compatible"`` for any other compatible server."""
    if endpoint.api_base is None:
        return "openai"
    host = urlparse(endpoint.api_base).hostname or ""
    return "openai" if host == _OPENAI_HOST or host.endswith("." + _OPENAI_HOST) else "compatible"


def resolve_output_mode(endpoint: LLMEndpoint) -> ResolvedOutputMode:
    """The endpoint's output mode, with ``"auto"`` replaced by the default for its kind."""
    if endpoint.output_mode != "auto":
        return endpoint.output_mode
    return "tool" if endpoint_kind(endpoint) == "openai" else "json_object"


def build_http_client(endpoint: LLMEndpoint, *, max_connections: int) -> DefaultAsyncHttpxClient:
    """The HTTP client for the endpoint's models, with at most `max_connections` requests in
    flight: the bound is its connection pool, so the client-side work around a request
    (building it, parsing the answer) is done outside it. Waiting for a free connection is
    queueing, not a failure, so it has no time limit; connecting, sending and reading have the
    endpoint's timeout.

    It is a plain client, not the SDK's wrapper, whose ``__del__`` schedules a close on whatever
    loop is running, which fails noisily once the loop that opened the connections is closed.
    """
    limits = type(DEFAULT_CONNECTION_LIMITS)(  # the SDK's own HTTP library's Limits
        max_connections=max_connections, max_keepalive_connections=max_connections
    )
    return DefaultAsyncHttpxClient(timeout=_timeout(endpoint), limits=limits)


def _timeout(endpoint: LLMEndpoint) -> Timeout:
    return Timeout(endpoint.timeout_seconds, pool=None)


def build_model(
    endpoint: LLMEndpoint,
    *,
    http_client: DefaultAsyncHttpxClient,
    model_name: str | None = None,
) -> OpenAIChatModel:
    """A pydantic-ai chat model for the endpoint (or for `model_name` on the same endpoint),
    sending through `http_client` (see `build_http_client`). Models sharing one HTTP client
    share its bound on requests in flight.

    The openai SDK's own retries are off (``max_retries=0``): `LLMClient` owns the retry policy,
    so a request is never retried twice over.
    """
    client = AsyncOpenAI(
        base_url=endpoint.api_base,
        api_key=endpoint.api_key.get_secret_value() if endpoint.api_key else "api-key-not-set",
        max_retries=0,
        timeout=_timeout(endpoint),  # the SDK passes it on with every request
        http_client=http_client,
    )
    profile: ModelProfile | None = None
    if endpoint_kind(endpoint) == "compatible":
        # The provider guesses capabilities from the model name; a local server's model name says
        # nothing, and the modes decide what is sent, so declare what they need. JSON-object
        # output is off: json_object mode sends its own response_format (with the schema), and
        # prompted mode must send none, for servers that support none.
        profile = ModelProfile(
            supports_tools=True,
            supports_json_schema_output=True,
            supports_json_object_output=False,
            supports_forced_tool_choice=True,
        )
    model_class = (
        _NamedToolChoiceChatModel
        if resolve_output_mode(endpoint) == "forced_tool"
        else OpenAIChatModel
    )
    return model_class(
        model_name or endpoint.model,
        provider=OpenAIProvider(openai_client=client),
        profile=profile,
    )


class _NamedToolChoiceChatModel(OpenAIChatModel):
    """Forces the single output tool by name instead of with ``tool_choice="required"``.

    pydantic-ai sends ``"required"`` whenever the forced tools are all the tools there are, even
    when asked for a list of names, and llama.cpp ignores ``"required"``; it does honour
    ``{"type": "function", "function": {"name": ...}}``. This overrides the one (documented as
    overridable) hook that picks the value.
    """

    def _get_tool_choice(  # type: ignore[override]
        self, model_settings: Any, model_request_parameters: Any
    ) -> tuple[list[Any], Any]:
        tools, tool_choice = super()._get_tool_choice(model_settings, model_request_parameters)
        if tool_choice == "required" and len(tools) == 1:
            tool_choice = {"type": "function", "function": {"name": tools[0]["function"]["name"]}}
        return tools, tool_choice


@dataclass(frozen=True)
class OutputRecipe:
    """What to pass to ``Agent.run`` for one output mode: the output spec and model settings."""

    output_spec: OutputSpec[Any]
    model_settings: ModelSettings


def output_recipe(
    output_type: type[BaseModel],
    mode: ResolvedOutputMode,
    *,
    template: str | Literal[False] | None = None,
    prompt_cache: bool = False,
) -> OutputRecipe:
    """The pydantic-ai output spec and model settings that request `output_type` in `mode`.

    `template` is what the prompted modes (``json_object``, ``prompted``) add to the
    instructions: None for pydantic-ai's default (the JSON schema), a string of our own (the
    schema is appended unless it holds ``{schema}``), or False for nothing. `prompt_cache` sends
    ``cache_prompt: true`` (llama.cpp's server reuses the evaluated prompt prefix; other
    compatible servers ignore the key), so never to OpenAI's own API.
    """
    settings = ModelSettings(max_retries=0)
    extra_body: dict[str, Any] = {"cache_prompt": True} if prompt_cache else {}
    if mode in ("tool", "forced_tool"):  # forced_tool: forced by name by the model class
        spec: OutputSpec[Any] = ToolOutput(output_type, name=OUTPUT_TOOL_NAME)
    elif mode == "json_schema":
        spec = NativeOutput(output_type)
    elif mode == "json_object":
        extra_body["response_format"] = {
            "type": "json_object",
            "schema": output_type.model_json_schema(),
        }
        spec = PromptedOutput(output_type, template=template)
    elif mode == "prompted":
        spec = PromptedOutput(output_type, template=template)
    else:
        raise ValueError(f"unknown output mode {mode!r}")
    if extra_body:
        settings["extra_body"] = extra_body
    return OutputRecipe(spec, settings)


class AgentEndpointConfig(LLMEndpoint):
    """The endpoint part of an agent's config (LabelerConfig, AugmenterConfig).

    The defaults are the offline path (`model` "local", no server). `esk_pipeline.configs`
    fills these fields from the agent's LLM_<AGENT>_* settings, else the main LLM_* ones.
    """

    def endpoint(self) -> LLMEndpoint:
        """The LLM endpoint this config describes."""
        return LLMEndpoint.model_validate(self.model_dump(include=set(LLMEndpoint.model_fields)))
