"""Finishing touches FastAPI's generated OpenAPI document needs to be valid and complete.

- Fixed-length tuples (pydantic's `prefixItems`) are rendered as plain lists whose items are
  any of the tuple's item types, with the length bounds kept: tools that read OpenAPI 3.1
  through older JSON Schema drafts turn `prefixItems` into the invalid `items: [...]`.
- Every operation with a request body documents 400: FastAPI answers it for a body it cannot
  decode at all (bytes that are not UTF-8, a broken multipart stream).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

from esk_pipeline.api.schemas import ErrorOut

_ERROR_REF = {"$ref": f"#/components/schemas/{ErrorOut.__name__}"}


def _tuples_as_lists(node: Any) -> None:
    if isinstance(node, dict):
        prefix = node.pop("prefixItems", None)
        if prefix is not None:
            unique = [item for i, item in enumerate(prefix) if item not in prefix[:i]]
            node["items"] = unique[0] if len(unique) == 1 else {"anyOf": unique}
        for value in node.values():
            _tuples_as_lists(value)
    elif isinstance(node, list):
        for value in node:
            _tuples_as_lists(value)


def _document_body_errors(document: dict[str, Any]) -> None:
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            if isinstance(operation, dict) and "requestBody" in operation:
                operation["responses"].setdefault(
                    "400",
                    {
                        "description": "Bad Request: the body could not be decoded",
                        "content": {"application/json": {"schema": _ERROR_REF}},
                    },
                )


def install_openapi(app: FastAPI) -> None:
    """Make `app.openapi()` (and /openapi.json, /docs) serve the completed document."""
    generate: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = generate()
            _tuples_as_lists(document)
            _document_body_errors(document)
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
