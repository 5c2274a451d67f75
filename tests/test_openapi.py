"""The OpenAPI document: valid 3.1, complete, and true to the schemas the handlers use."""

from __future__ import annotations

import re
from typing import Any

import jsonschema
import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from marshmallow import fields
from openapi_spec_validator import OpenAPIV31SpecValidator

from marketsvc.app import create_app
from marketsvc.schemas.common import Money, StrictSchema, UtcDateTime
from marketsvc.settings import Settings
from marketsvc.web.openapi import (
    OPENAPI_JSON,
    build_document,
    documented_routes,
    undocumented_routes,
)
from marketsvc.web.routing import Access, endpoint
from tests.contract import Contract, resolve

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:openapi_spec_validator")


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return build_document(create_app(Settings()))


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, op) for path, ops in document["paths"].items() for method, op in ops.items()
    ]


async def test_served_document_is_valid_openapi_3_1(client) -> None:
    resp = await client.get("/api/v1/openapi.json")
    assert resp.status == 200
    assert resp.content_type == "application/json"
    served = await resp.json()
    assert served["openapi"] == "3.1.0"
    errors = [e.message for e in OpenAPIV31SpecValidator(served).iter_errors()]
    assert errors == []


def test_every_route_of_the_app_is_documented(document) -> None:
    app = create_app(Settings())
    assert undocumented_routes(app, document) == []
    assert {"/api/v1/items", "/api/v1/customers/{id}", "/healthz"} <= document["paths"].keys()


def test_a_route_without_metadata_or_documentation_is_caught(document) -> None:
    async def bare(request: web.Request) -> web.Response:
        return web.Response()

    @endpoint(summary="Later", access=Access.ADMIN, tag="later")
    async def later(request: web.Request) -> web.Response:
        return web.Response()

    app = create_app(Settings())
    app.router.add_post("/api/v1/bare", bare)
    app.router.add_delete("/api/v1/later/{id}", later)
    assert undocumented_routes(app, document) == [
        "POST /api/v1/bare: no @endpoint metadata",
        "DELETE /api/v1/later/{id}: not in the OpenAPI document",
    ]
    assert "delete" in build_document(app)["paths"]["/api/v1/later/{id}"]


def test_operation_ids_are_unique(document) -> None:
    ids = [op["operationId"] for _, _, op in operations(document)]
    assert len(ids) == len(set(ids))


def test_protected_operations_need_a_bearer_token_and_say_401_and_403(document) -> None:
    assert document["components"]["securitySchemes"]["bearerAuth"]["bearerFormat"] == "JWT"
    assert document["security"] == [{"bearerAuth": []}]  # the default; public ones say []
    for method, path, _, spec in documented_routes(create_app(Settings())):
        op = document["paths"][path][method.lower()]
        protected = spec.access is not Access.PUBLIC
        assert op["security"] == ([{"bearerAuth": []}] if protected else []), (method, path)
        assert ({"401", "403"} <= op["responses"].keys()) == protected, (method, path)
        if path.startswith("/api/v1/"):  # the contract: only the catalogue and this are public
            public = method == "GET" and path.startswith(("/api/v1/items", "/api/v1/openapi"))
            # signed per Standard Webhooks instead of a bearer token (tests/test_payments.py)
            public = public or (method, path) == ("POST", "/api/v1/payments/events")
            assert protected != public, (method, path)


def test_errors_follow_what_each_route_declares(document) -> None:
    create = document["paths"]["/api/v1/items"]["post"]["responses"]
    assert {"201", "400", "401", "403", "409", "413", "415", "417", "422", "503"} == create.keys()
    assert "Location" in create["201"]["headers"]
    listing = document["paths"]["/api/v1/items"]["get"]["responses"]
    assert {"200", "304", "400", "406", "422", "503"} == listing.keys()
    assert "Vary" in listing["200"]["headers"]
    assert set(document["paths"]["/healthz"]["get"]["responses"]) == {"200", "400"}
    problem = document["components"]["responses"]["Problem404"]
    assert "application/problem+json" in problem["content"]
    assert "X-Request-ID" in problem["headers"]


def test_streams_offer_a_json_array_and_ndjson(document) -> None:
    content = document["paths"]["/api/v1/customers"]["get"]["responses"]["200"]["content"]
    assert content["application/json"]["schema"] == {
        "type": "array",
        "items": {"$ref": "#/components/schemas/CustomerOut"},
    }
    assert "application/x-ndjson" in content


def test_query_parameters_come_from_the_query_schema(document) -> None:
    params = document["paths"]["/api/v1/items"]["get"]["parameters"]
    limit = next(p for p in params if p.get("name") == "limit")
    assert limit["in"] == "query"
    assert limit["schema"] == {"type": "integer", "minimum": 1, "maximum": 1000}


def test_custom_fields_map_to_json_schema_types(document) -> None:
    schemas = document["components"]["schemas"]
    price = schemas["ItemOut"]["properties"]["price"]
    assert price["type"] == "string"
    assert price["pattern"]
    assert schemas["ItemCreate"]["properties"]["stock"]["type"] == "integer"
    assert schemas["ItemOut"]["properties"]["id"]["minimum"] == 1
    assert schemas["CustomerCreate"]["properties"]["email"]["format"] == "email"
    assert "GB" in schemas["Address"]["properties"]["country"]["enum"]
    assert schemas["ItemOut"]["additionalProperties"] is False


def test_a_later_route_is_documented_from_its_schemas_alone() -> None:
    class ReceiptOut(StrictSchema):
        paid_at = UtcDateTime(required=True)
        amount = Money(required=True)
        note = fields.String(allow_none=True)

    @endpoint(
        summary="A receipt",
        access=Access.CUSTOMER,
        tag="later",
        response=ReceiptOut(),
        errors=(410,),
    )
    async def get_receipt(request: web.Request) -> web.Response:
        return web.Response()

    app = create_app(Settings())
    app.router.add_get("/api/v1/receipts/{id}", get_receipt)
    document = build_document(app)
    receipt = document["components"]["schemas"]["ReceiptOut"]["properties"]
    assert receipt["paid_at"] == {"type": "string", "format": "date-time"}
    assert receipt["amount"]["type"] == "string"
    assert receipt["note"]["type"] == ["string", "null"]
    op = document["paths"]["/api/v1/receipts/{id}"]["get"]
    assert {"401", "403", "404", "410", "503"} <= op["responses"].keys()
    assert document["components"]["responses"]["Problem410"]["description"] == "Gone."
    assert list(OpenAPIV31SpecValidator(document).iter_errors()) == []


def test_examples_match_their_schemas(document) -> None:
    examples = 0
    for _, _, op in operations(document):
        bodies = [op.get("requestBody", {}).get("content", {})]
        bodies += [r.get("content", {}) for r in op["responses"].values()]
        for content in bodies:
            media = content.get("application/json", {})
            if "example" in media:
                validate(document, media["schema"], media["example"])
                examples += 1
    for response in document["components"]["responses"].values():
        media = response["content"]["application/problem+json"]
        validate(document, media["schema"], media["example"])
    assert examples >= 8


def validate(document: dict[str, Any], schema: dict[str, Any], instance: Any) -> None:
    root = {"components": document["components"]} | schema
    jsonschema.Draft202012Validator(root, format_checker=jsonschema.FormatChecker()).validate(
        instance
    )


async def test_docs_page_and_its_assets_are_served_locally(client) -> None:
    page = await client.get("/api/docs")
    assert page.status == 200
    assert page.content_type == "text/html"
    html = await page.text()
    assert "/api/v1/openapi.json" in html
    assert "https://" not in html
    for asset in ("swagger-ui.css", "swagger-ui-bundle.js", "swagger-ui-standalone-preset.js"):
        resp = await client.get(f"/api/docs/static/{asset}")
        assert resp.status == 200, asset
        assert len(await resp.read()) > 1000


async def test_the_contract_check_catches_a_response_that_breaks_the_document(
    settings,
) -> None:
    """What every ``aiohttp_client`` test relies on: a wrong status or body is reported."""
    app = create_app(settings)
    contract = Contract()
    contract.watch(app)
    async with TestClient(TestServer(app)) as client:
        assert (await client.get("/api/v1/items/0")).status == 404
        assert contract.violations == []
        # The same answers, checked against a document that promises something else.
        stricter = orjson.loads(app[OPENAPI_JSON])
        stricter["components"]["schemas"]["Problem"]["required"].append("instance")
        del stricter["paths"]["/api/v1/items"]["get"]["responses"]["422"]
        contract._documents[app[OPENAPI_JSON]] = stricter
        await client.get("/api/v1/items/0")
        await client.get("/api/v1/items?limit=0")
    assert contract.violations == [
        "GET /api/v1/items/{id} -> 404 application/problem+json: body at '': "
        "'instance' is a required property",
        "GET /api/v1/items -> 422: status not documented",
    ]
    with pytest.raises(AssertionError, match="break the OpenAPI document"):
        contract.assert_kept()


async def test_the_contract_check_reads_every_streamed_element(settings, admin) -> None:
    """Streamed lists too: every element of a JSON array, every NDJSON line, is checked."""
    app = create_app(settings)
    contract = Contract()
    contract.watch(app)
    async with TestClient(TestServer(app)) as client:
        for n in (1, 2):
            body = {"name": f"Kettle {n}", "price": "1.00", "stock": 1}
            assert (await client.post("/api/v1/items", json=body, headers=admin)).status == 201
        stricter = orjson.loads(app[OPENAPI_JSON])
        stricter["components"]["schemas"]["ItemOut"]["required"].append("colour")
        contract._documents[app[OPENAPI_JSON]] = stricter
        assert len(await (await client.get("/api/v1/items")).json()) == 2
        ndjson = {"Accept": "application/x-ndjson"}
        assert len((await (await client.get("/api/v1/items", headers=ndjson)).text()).split()) == 4
        assert (await client.head("/api/v1/items")).status == 200  # no body, nothing to check
    missing = "'colour' is a required property"
    assert contract.violations == [
        f"GET /api/v1/items -> 200 application/json: body at '0': {missing}",
        f"GET /api/v1/items -> 200 application/json: body at '1': {missing}",
        f"GET /api/v1/items -> 200 application/x-ndjson line 1: body at '': {missing}",
        f"GET /api/v1/items -> 200 application/x-ndjson line 2: body at '': {missing}",
    ]


def test_money_pattern_fits_inputs_and_long_computed_totals(document) -> None:
    pattern = re.compile(
        document["components"]["schemas"]["ItemOut"]["properties"]["price"]["pattern"]
    )
    for money in ("0.30", "10.50", "7", "99999999999900.01"):
        assert pattern.search(money), money
    for not_money in ("10.555", "-1.00", "1e3", "01.00", " 1.00"):
        assert not pattern.search(not_money), not_money


async def test_a_request_line_over_the_http_limit_is_a_documented_400(client, document) -> None:
    """Found by the fuzzer: aiohttp refuses a request line over 8190 bytes with a text/plain 400
    before the app sees it; the document did not say so."""
    resp = await client.get("/api/v1/items?" + "&".join(["limit=1"] * 1500))
    assert resp.status == 400
    assert resp.content_type == "text/plain"
    for _, _, op in operations(document):
        assert "text/plain" in resolve(document, op["responses"]["400"])["content"]


def test_every_parameter_is_described_and_every_body_has_an_example(document) -> None:
    missing = []
    for method, path, op in operations(document):
        for param in op["parameters"]:
            param = resolve(document, param)
            if not param.get("description"):
                missing.append(f"{method} {path} parameter {param['name']}: no description")
        bodies = [("request", op["requestBody"])] if "requestBody" in op else []
        bodies += [(status, resolve(document, r)) for status, r in op["responses"].items()]
        for where, body in bodies:
            for media_type, media in body.get("content", {}).items():
                if "example" not in media:
                    missing.append(f"{method} {path} {where} {media_type}: no example")
    assert missing == []


def test_ndjson_is_documented_as_a_sequence_of_the_item_schema(document) -> None:
    content = document["paths"]["/api/v1/pets"]["get"]["responses"]["200"]["content"]
    assert (
        content["application/x-ndjson"]["schema"] == content["application/json"]["schema"]["items"]
    )
