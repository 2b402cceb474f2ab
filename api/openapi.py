"""The OpenAPI document says what the API really answers: problems as ``application/problem+json``.

Routes list the error statuses they can return (``problems(404, 409)``); the document is then
rewritten so every error response points at the ``Problem`` schema under the problem media type,
FastAPI's default 422 body included. Schemathesis checks responses against this document.
"""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from api.errors import PROBLEM_MEDIA_TYPE, Problem

_REF = {"$ref": "#/components/schemas/Problem"}


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {status: {"description": HTTPStatus(status).phrase} for status in statuses}


def install(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        document = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        schemas = document.setdefault("components", {}).setdefault("schemas", {})
        schemas["Problem"] = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
        for methods in document.get("paths", {}).values():
            for operation in methods.values():
                responses = operation.get("responses", {})
                for code, response in responses.items():
                    if code.isdigit() and int(code) >= 400:
                        response["content"] = {PROBLEM_MEDIA_TYPE: {"schema": _REF}}
        for name in ("HTTPValidationError", "ValidationError"):
            if not _referenced(document, name):
                schemas.pop(name, None)
        app.openapi_schema = document
        return document

    app.openapi = openapi  # type: ignore[method-assign]


def _referenced(document: dict[str, Any], name: str) -> bool:
    return f'"#/components/schemas/{name}"' in json.dumps(document.get("paths", {}))
