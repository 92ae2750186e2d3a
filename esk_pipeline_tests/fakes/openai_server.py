"""A real OpenAI-compatible HTTP server on loopback, with fault injection, for tests and benches.

    with FakeOpenAIServer(responder=my_responder, fault_plan=["500", None]) as server:
        endpoint = LLMEndpoint(model="fake-model", api_base=server.base_url, api_key=...)
        ...
        assert server.request_count == 2

`POST /v1/chat/completions` answers the way the request asks for structured output: with a tool
call when tools are sent (the tool forced by name, else the first), as JSON content for a
``response_format`` of ``json_object``/``json_schema`` and for plain prompted requests. *What* it
answers is a `Responder`: ``responder(request_json) -> dict``, the structured output object
(default: a schema-valid example built from the request's JSON schema). Responses carry
``usage`` token counts (about four characters a token).

Faults, per server: fixed `latency_ms` (the whole response time, the server's own work
included); `fault_plan`, a list of fault kinds (None = answer normally) used for the first
requests in order; then `fault_rate` (0..1, seeded RNG) over `fault_kinds`; `model_faults`
fails every request for the named models. Kinds: ``"timeout"``
(sleep `hang_seconds`, past the client's timeout), ``"429"`` (with ``Retry-After``),
``"401"``, ``"500"``, ``"502"``, ``"503"``, ``"malformed_body"`` (a truncated JSON body),
``"malformed_output"`` (truncated JSON in the tool arguments/content). Faults in the *content*
of a batch answer (unknown labels, missing or duplicated ids) are the responder's; see
`with_batch_faults`.

A request with ``logprobs: true`` gets token logprobs for a content answer (not for tool calls,
like OpenAI): the content split into tokens of a word and the non-word characters after it
(or a run of non-word characters), each with the probability `token_probability(token)`
(default 0.9).

``quirks="llamacpp"`` mimics llama.cpp's server (llama-cpp-python's): ``tool_choice="required"``
(or none) is ignored and the answer comes back as plain text, ``response_format`` of type
``json_schema`` is an HTTP 500, and so is a request for logprobs (a model loaded without
``logits_all``).

Every request body is recorded (`requests`, `request_count`, arrival `request_times`), every
successful completion body too (`responses`), and `max_concurrent` is the most requests the
server had in flight at once.
"""

from __future__ import annotations

import copy
import json
import math
import random
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

Responder = Callable[[dict[str, Any]], dict[str, Any]]
FaultKind = Literal[
    "timeout", "429", "401", "500", "502", "503", "malformed_body", "malformed_output"
]
HTTP_FAULTS: tuple[FaultKind, ...] = ("timeout", "429", "500", "502", "503", "malformed_body")
_STATUS_FAULTS = {"401": 401, "429": 429, "500": 500, "502": 502, "503": 503}


def request_schema(request: Mapping[str, Any]) -> dict[str, Any] | None:
    """The JSON schema the request asks its answer to follow, wherever the mode puts it."""
    tools = request.get("tools") or []
    if tools:
        return _chosen_tool(request)["function"].get("parameters")
    response_format = request.get("response_format") or {}
    if response_format.get("type") == "json_schema":
        return response_format["json_schema"].get("schema")
    if response_format.get("schema"):
        return response_format["schema"]
    for message in request.get("messages", []):  # prompted: the schema is in the instructions
        schema = _first_schema_in(_message_text(message))
        if schema is not None:
            return schema
    return None


def request_text(request: Mapping[str, Any]) -> str:
    """The text of the last user message: what a responder classifies or rewrites."""
    users = [m for m in request.get("messages", []) if m.get("role") == "user"]
    return _message_text(users[-1]) if users else ""


def schema_example(schema: Mapping[str, Any], defs: Mapping[str, Any] | None = None) -> Any:
    """A small value valid for `schema` (objects, arrays, enums, refs, scalars)."""
    defs = schema.get("$defs", defs or {})
    if "$ref" in schema:
        return schema_example(defs[schema["$ref"].rsplit("/", 1)[-1]], defs)
    for combinator in ("anyOf", "oneOf", "allOf"):
        if combinator in schema:
            return schema_example(schema[combinator][0], defs)
    if "enum" in schema:
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    kind = schema.get("type", "object")
    if kind == "object":
        props = schema.get("properties", {})
        return {name: schema_example(sub, defs) for name, sub in props.items()}
    if kind == "array":
        return [schema_example(schema.get("items", {}), defs)] * schema.get("minItems", 1)
    minimum = schema.get("minimum", 0)
    examples = {"string": "example", "integer": int(minimum), "number": float(minimum)}
    return examples.get(kind, True if kind == "boolean" else None)


def example_responder(request: dict[str, Any]) -> dict[str, Any]:
    """The default responder: a schema-valid example of whatever the request asks for."""
    schema = request_schema(request)
    return schema_example(schema) if schema else {"answer": "example"}


_BATCH_LINE = re.compile(r"^(t\d+): (\".*\")$", re.MULTILINE)


def batch_texts(prompt: str) -> dict[str, str]:
    """The short id -> text lines of a labeler batch prompt ("t1: \"...\"")."""
    return {i: json.loads(quoted) for i, quoted in _BATCH_LINE.findall(prompt)}


def labeler_responder(domain_for: Callable[[str], str], confidence: float = 0.9) -> Responder:
    """Answers a labeler batch like a model would: every id, with `domain_for(text)`."""

    def respond(request: dict[str, Any]) -> dict[str, Any]:
        items = [
            {"id": i, "domain": domain_for(text), "confidence": confidence}
            for i, text in batch_texts(request_text(request)).items()
        ]
        return {"items": items}

    return respond


def with_batch_faults(
    responder: Responder,
    *,
    rate: float,
    seed: int = 0,
    items_key: str = "items",
    id_key: str = "id",
    label_key: str = "domain",
    kinds: Sequence[Literal["unknown_label", "missing_id", "duplicate_id"]] = (
        "unknown_label",
        "missing_id",
        "duplicate_id",
    ),
    unknown_label: str = "not_a_domain",
) -> Responder:
    """Wrap a batch responder so that, per item with probability `rate`, the answer has a label
    outside the taxonomy, drops the item, or lists it twice (seeded, reproducible)."""
    rng = random.Random(seed)
    lock = threading.Lock()

    def faulty(request: dict[str, Any]) -> dict[str, Any]:
        answer = copy.deepcopy(responder(request))
        items: list[dict[str, Any]] = []
        for item in answer.get(items_key, []):
            with lock:
                fault = rng.choice(kinds) if rng.random() < rate else None
            if fault == "missing_id":
                continue
            if fault == "unknown_label":
                item = {**item, label_key: unknown_label}
            items.append(item)
            if fault == "duplicate_id":
                items.append(dict(item))
        answer[items_key] = items
        return answer

    return faulty


class FakeOpenAIServer:
    """The server; `start()`/`stop()` or a ``with`` block. Listens on a free loopback port."""

    def __init__(
        self,
        responder: Responder = example_responder,
        *,
        latency_ms: float = 0,
        fault_plan: Sequence[FaultKind | None] = (),
        fault_rate: float = 0.0,
        fault_kinds: Sequence[FaultKind] = HTTP_FAULTS,
        model_faults: Mapping[str, FaultKind] | None = None,
        seed: int = 0,
        hang_seconds: float = 3.0,
        retry_after_seconds: int = 1,
        quirks: Literal["llamacpp"] | None = None,
        model_ids: Sequence[str] = ("fake-model",),
        token_probability: Callable[[str], float] = lambda token: 0.9,
    ) -> None:
        self.responder = responder
        self.latency_ms = latency_ms
        self.fault_plan = list(fault_plan)
        self.fault_rate = fault_rate
        self.fault_kinds = list(fault_kinds)
        self.model_faults = dict(model_faults or {})
        self.hang_seconds = hang_seconds
        self.retry_after_seconds = retry_after_seconds
        self.quirks = quirks
        self.model_ids = list(model_ids)
        self.token_probability = token_probability
        self.requests: list[dict[str, Any]] = []
        self.request_times: list[float] = []  # time.monotonic() at arrival
        self.responses: list[dict[str, Any]] = []  # successful completion bodies
        self.max_concurrent = 0
        self._in_flight = 0
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>/v1``: the api_base for clients."""
        if self._httpd is None:
            raise RuntimeError("server not started")
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    @property
    def request_count(self) -> int:
        with self._lock:
            return len(self.requests)

    def start(self) -> FakeOpenAIServer:
        handler = type("_BoundHandler", (_Handler,), {"fake": self})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def reset(self) -> None:
        """Forget recorded requests and the concurrency high-water mark."""
        with self._lock:
            self.requests.clear()
            self.request_times.clear()
            self.responses.clear()
            self.max_concurrent = 0

    def _admit(self, request: dict[str, Any]) -> FaultKind | None:
        """Record the request and pick its fault, if any."""
        with self._lock:
            self.requests.append(request)
            self.request_times.append(time.monotonic())
            self._in_flight += 1
            self.max_concurrent = max(self.max_concurrent, self._in_flight)
            if request.get("model") in self.model_faults:
                return self.model_faults[request["model"]]
            if self.fault_plan:
                return self.fault_plan.pop(0)
            if self.fault_kinds and self._rng.random() < self.fault_rate:
                return self._rng.choice(self.fault_kinds)
            return None

    def _leave(self) -> None:
        with self._lock:
            self._in_flight -= 1

    def completion(self, request: dict[str, Any], fault: FaultKind | None) -> tuple[int, Any]:
        """Status and JSON body (or raw text for a malformed body) for one chat request."""
        if fault in _STATUS_FAULTS:
            return _STATUS_FAULTS[fault], _error_body(fault)
        if fault == "malformed_body":
            return 200, '{"id": "chatcmpl-broken", "choices": [{"mess'
        response_format = request.get("response_format") or {}
        if self.quirks == "llamacpp" and response_format.get("type") == "json_schema":
            return 500, _error_body("500", "response_format type json_schema is not supported")
        if self.quirks == "llamacpp" and request.get("logprobs"):
            message = "logprobs is not supported for models created with logits_all=False"
            return 500, _error_body("500", message)
        output_json = json.dumps(self.responder(request), ensure_ascii=False)
        if fault == "malformed_output":
            output_json = output_json[: len(output_json) // 2]
        message: dict[str, Any] = {"role": "assistant", "content": output_json}
        finish_reason = "stop"
        tools = request.get("tools") or []
        tool_choice = request.get("tool_choice")
        ignores_choice = self.quirks == "llamacpp" and not isinstance(tool_choice, dict)
        if tools and not ignores_choice:
            name = _chosen_tool(request)["function"]["name"]
            message = {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": f"call_{len(self.requests)}",
                        "type": "function",
                        "function": {"name": name, "arguments": output_json},
                    }
                ],
            }
            finish_reason = "tool_calls"
        prompt_tokens = _tokens(json.dumps(request.get("messages", []), ensure_ascii=False))
        completion_tokens = _tokens(output_json)
        choice: dict[str, Any] = {"index": 0, "message": message, "finish_reason": finish_reason}
        if request.get("logprobs") and message.get("content"):
            choice["logprobs"] = {"content": self._logprobs(message["content"])}
        body = {
            "id": f"chatcmpl-{len(self.requests)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": request.get("model", "fake-model"),
            "choices": [choice],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }
        with self._lock:
            self.responses.append(body)
        return 200, body

    def _logprobs(self, content: str) -> list[dict[str, Any]]:
        entries = []
        for token in _TOKEN.findall(content):
            logprob = math.log(self.token_probability(token))
            entry = {"token": token, "logprob": logprob}
            entries.append({**entry, "top_logprobs": [entry]})
        return entries


_TOKEN = re.compile(r"\w+\W*|\W+", re.DOTALL)


class _Handler(BaseHTTPRequestHandler):
    fake: FakeOpenAIServer
    protocol_version = "HTTP/1.1"
    # Without TCP_NODELAY each small response waits ~40 ms for a delayed ACK (Nagle).
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:  # quiet test output
        return

    def do_GET(self) -> None:
        if self.path.rstrip("/").endswith("/models"):
            data = [{"id": m, "object": "model", "owned_by": "fake"} for m in self.fake.model_ids]
            self._send(200, {"object": "list", "data": data})
        else:
            self._send(404, _error_body("404", "not found"))

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", 0))
        body = self.rfile.read(length)
        if not self.path.rstrip("/").endswith("/chat/completions"):
            self._send(404, _error_body("404", "not found"))
            return
        arrived = time.monotonic()
        request = json.loads(body)
        fault = self.fake._admit(request)
        try:
            status, payload = self.fake.completion(request, fault)
            # The latency is the whole response time: the server's own work counts towards it.
            time.sleep(max(0.0, arrived + self.fake.latency_ms / 1000 - time.monotonic()))
            if fault == "timeout":
                time.sleep(self.fake.hang_seconds)
            headers = {"Retry-After": str(self.fake.retry_after_seconds)} if status == 429 else {}
            self._send(status, payload, headers)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout fault)
        finally:
            self.fake._leave()

    def _send(self, status: int, payload: Any, headers: Mapping[str, str] | None = None) -> None:
        raw = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False)
        data = raw.encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)


def _chosen_tool(request: Mapping[str, Any]) -> dict[str, Any]:
    tools = request["tools"]
    choice = request.get("tool_choice")
    if isinstance(choice, dict) and "function" in choice:
        return next(t for t in tools if t["function"]["name"] == choice["function"]["name"])
    return tools[0]


def _message_text(message: Mapping[str, Any]) -> str:
    content = message.get("content") or ""
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return str(content)


def _first_schema_in(text: str) -> dict[str, Any] | None:
    decoder = json.JSONDecoder()
    start = text.find("{")
    while start != -1:
        try:
            value, _ = decoder.raw_decode(text, start)
        except json.JSONDecodeError:
            value = None
        if isinstance(value, dict) and ("properties" in value or "$defs" in value):
            return value
        start = text.find("{", start + 1)
    return None


def _tokens(text: str) -> int:
    return max(1, len(text) // 4)


def _error_body(kind: str, message: str | None = None) -> dict[str, Any]:
    return {
        "error": {
            "message": message or f"injected fault {kind}",
            "type": "invalid_request_error" if kind.startswith("4") else "server_error",
            "code": kind,
        }
    }
