"""Every response a test sees, checked against the app's own OpenAPI document.

The app under test gets one more ``on_response_prepare`` hook that checks, as the response
leaves: the operation and its status are documented, the content type is one the document
names, declared headers are present, and a complete JSON body (``web.Response``) matches the
schema. Streamed bodies are checked by status and media type only: nothing is read twice, and
nothing the test did not read is read at all. Violations are collected and fail the test at
teardown, so a test that asserts on a wrong status still reports the contract breach.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import jsonschema
import orjson
from aiohttp import web

from marketsvc.web.openapi import OPENAPI_JSON

SEEN: Counter[str] = Counter()  # "METHOD path status" -> responses checked, for the summary


class Contract:
    def __init__(self) -> None:
        self.violations: list[str] = []
        self._documents: dict[bytes, dict[str, Any]] = {}
        self._validators: dict[tuple[int, str], jsonschema.Draft202012Validator] = {}

    def watch(self, app: web.Application) -> None:
        app.on_response_prepare.append(self._check)

    def assert_kept(self) -> None:
        assert not self.violations, "responses break the OpenAPI document:\n" + "\n".join(
            self.violations
        )

    async def _check(self, request: web.Request, response: web.StreamResponse) -> None:
        handler = request.match_info.handler
        if not getattr(handler, "__module__", "").startswith("marketsvc."):
            return  # aiohttp's own 404/405/static answers, or a route a test added for itself
        path = request.match_info.route.resource.canonical
        method = "get" if request.method == "HEAD" else request.method.lower()
        where = f"{request.method} {path} -> {response.status}"
        SEEN[f"{method.upper()} {path} {response.status}"] += 1
        document = self._document(request.app)
        operation = document["paths"].get(path, {}).get(method)
        if operation is None:
            self.violations.append(f"{where}: operation not documented")
            return
        documented = operation["responses"].get(str(response.status))
        if documented is None:
            self.violations.append(f"{where}: status not documented")
            return
        self._check_response(document, resolve(document, documented), response, where)

    def _check_response(
        self, document: dict[str, Any], documented: dict[str, Any], response: Any, where: str
    ) -> None:
        for name, header in documented.get("headers", {}).items():
            header = resolve(document, header)
            if (header.get("required") or name in ("X-Request-ID", "Location")) and (
                name not in response.headers
            ):
                self.violations.append(f"{where}: header {name} missing")
        content = documented.get("content", {})
        media_type = response.content_type
        if not content:
            return  # 204 and the like: nothing more to check
        if media_type not in content:
            self.violations.append(f"{where}: content type {media_type!r} not documented")
            return
        body = getattr(response, "body", None)
        if isinstance(body, bytes) and media_type.endswith("json"):
            self._check_body(document, content[media_type]["schema"], body, f"{where} {media_type}")

    def _check_body(self, document: dict[str, Any], schema: Any, body: bytes, where: str) -> None:
        key = (id(document), where)
        validator = self._validators.get(key)
        if validator is None:
            root = {"components": document["components"]} | schema
            validator = jsonschema.Draft202012Validator(
                root, format_checker=jsonschema.FormatChecker()
            )
            self._validators[key] = validator
        for error in validator.iter_errors(orjson.loads(body)):
            at = "/".join(map(str, error.absolute_path))
            self.violations.append(f"{where}: body at {at!r}: {error.message}")

    def _document(self, app: web.Application) -> dict[str, Any]:
        raw = app[OPENAPI_JSON]
        if raw not in self._documents:
            self._documents[raw] = orjson.loads(raw)
        return self._documents[raw]


def resolve(document: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        *_, kind, name = node["$ref"].split("/")
        node = document["components"][kind][name]
    return node
