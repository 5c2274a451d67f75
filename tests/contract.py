"""Every response a test sees, checked against the app's own OpenAPI document.

The app under test gets one more ``on_response_prepare`` hook that checks, as the response
leaves: the operation and its status are documented, the content type is one the document
names, declared headers are present, and a complete JSON body (``web.Response``) matches the
schema. A streamed body is checked as it is written: every NDJSON line against the documented
item schema as soon as the line is complete, a JSON array as a whole (each element against the
item schema) when the response ends; a stream cut short is not checked. Violations are
collected and fail the test at teardown, so a test that asserts on a wrong status still reports
the contract breach.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import jsonschema
import orjson
from aiohttp import web

from marketsvc.web.openapi import OPENAPI_JSON

SEEN: Counter[str] = Counter()  # "METHOD path status" -> responses checked, for the summary
STREAMED: Counter[str] = Counter()  # media type -> streamed items checked, for the summary
NDJSON = "application/x-ndjson"


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
        head = request.method == "HEAD"  # headers only: no body to check
        self._check_response(document, resolve(document, documented), response, where, head)

    def _check_response(
        self,
        document: dict[str, Any],
        documented: dict[str, Any],
        response: Any,
        where: str,
        head: bool = False,
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
        where = f"{where} {media_type}"
        if isinstance(response, web.Response):
            if isinstance(response.body, bytes) and media_type == NDJSON:  # a page, whole
                item = content.get("application/json", {}).get("schema", {}).get("items", {})
                for n, line in enumerate(response.body.splitlines(), 1):
                    self._check_body(document, item, line, f"{where} line {n}")
            elif isinstance(response.body, bytes) and media_type.endswith("json"):
                self._check_body(document, content[media_type]["schema"], response.body, where)
        elif media_type in (NDJSON, "application/json") and not head:
            # an NDJSON line has the shape of an element of the route's JSON array
            array = content.get("application/json", {}).get("schema", {})
            StreamedBody(self, document, array, response, where)

    def _check_body(self, document: dict[str, Any], schema: Any, body: bytes, where: str) -> None:
        for error in self._validator(document, schema, where).iter_errors(orjson.loads(body)):
            at = "/".join(map(str, error.absolute_path))
            self.violations.append(f"{where}: body at {at!r}: {error.message}")

    def _validator(
        self, document: dict[str, Any], schema: Any, where: str
    ) -> jsonschema.Draft202012Validator:
        key = (id(document), where)
        validator = self._validators.get(key)
        if validator is None:
            root = {"components": document["components"]} | schema
            validator = jsonschema.Draft202012Validator(
                root, format_checker=jsonschema.FormatChecker()
            )
            self._validators[key] = validator
        return validator

    def _document(self, app: web.Application) -> dict[str, Any]:
        raw = app[OPENAPI_JSON]
        if raw not in self._documents:  # a test may put a stricter document here for itself
            if raw not in _PARSED:
                _PARSED[raw] = orjson.loads(raw)
            self._documents[raw] = _PARSED[raw]
        return self._documents[raw]


# every test's app serves the same document: parsed once (some 20 ms), never changed
_PARSED: dict[bytes, dict[str, Any]] = {}


class StreamedBody:
    """Sees every byte a streamed response writes (its ``write`` and ``write_eof`` wrapped) and
    checks the body piece by piece: NDJSON line by line, a JSON array once complete."""

    def __init__(
        self,
        contract: Contract,
        document: dict[str, Any],
        array: dict[str, Any],
        response: web.StreamResponse,
        where: str,
    ) -> None:
        if array.get("type") != "array":
            contract.violations.append(f"{where}: streamed, but not documented as an array")
            return
        self.contract, self.document, self.array, self.where = contract, document, array, where
        self.ndjson = response.content_type == NDJSON
        self.buffer = bytearray()
        self.items = 0
        self.ended = False
        self._write, self._write_eof = response.write, response.write_eof
        response.write = self.write  # type: ignore[method-assign]
        response.write_eof = self.write_eof  # type: ignore[method-assign]

    async def write(self, data: bytes | bytearray | memoryview) -> None:
        self.buffer += data
        if self.ndjson:
            *lines, rest = bytes(self.buffer).split(b"\n")
            self.buffer = bytearray(rest)
            for line in lines:
                self._check_line(line)
        await self._write(data)

    async def write_eof(self, data: bytes = b"") -> None:
        if self.ended:  # aiohttp ends a response its handler already ended: a no-op
            await self._write_eof(data)
            return
        self.ended = True
        self.buffer += data
        if self.ndjson and self.buffer:
            self.contract.violations.append(f"{self.where}: the last line has no newline")
        elif not self.ndjson:
            self._check_array(bytes(self.buffer))
        self.buffer.clear()
        STREAMED[NDJSON if self.ndjson else "application/json"] += self.items
        await self._write_eof(data)

    def _check_line(self, line: bytes) -> None:
        self.items += 1
        schema = self.array["items"]
        where = f"{self.where} line {self.items}"
        try:
            self.contract._check_body(self.document, schema, line, where)
        except orjson.JSONDecodeError as exc:
            self.contract.violations.append(f"{where}: not JSON: {exc}")

    def _check_array(self, body: bytes) -> None:
        try:
            elements = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            self.contract.violations.append(f"{self.where}: not JSON: {exc}")
            return
        self.items = len(elements) if isinstance(elements, list) else 0
        self.contract._check_body(self.document, self.array, body, self.where)


def resolve(document: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        *_, kind, name = node["$ref"].split("/")
        node = document["components"][kind][name]
    return node
