"""schemathesis hooks for tests/test_document_values.py: a 422 for data generated from the
document is a failure, unless every message is a rule the document can state only in words."""

from __future__ import annotations

import re

import schemathesis

# (where, what the message says): rules between values or about what exists, which JSON Schema
# cannot express; each is stated in the description of the field or parameter it names.
WORDS_ONLY = [
    (r"body\.(customer_id|user_id|lines\.\d+\.item_id)", r"^\w+ \d+ does not exist\.$"),
    (r"body\.lines\.\d+\.quantity", r"^Lines for item \d+ add up to more than \d+\.$"),
    (r"query\.sort", r"^relevance needs q\.$"),
    (r"query\.q", r"^Each alternative needs a word to find, not only words to exclude\.$"),
    (r"query\.max_price", r"^Must not be below min_price\.$"),
    (r"query\.after_id", r"^after_id pages the id order only; use cursor\.$"),
    (r"query\.after_id", r"^Not with cursor: the cursor says where\.$"),
    (r"body\.url", r"^The host .* (does not resolve|resolves to a refused address)"),
    (r"body\.url", r"^The URL must use https\.$"),
    (r"body", r"^Give exactly one of after and since\.$"),
    (r"header\.Idempotency-Key", r"^Already used with a different method, path or body\.$"),
    (r"body\.(carrier|tracking_number)", r"^(Required to ship|Only when shipping)\.$"),
]


def stated_in_words(where: str, message: str) -> bool:
    return any(re.fullmatch(w, where) and re.search(m, message) for w, m in WORDS_ONLY)


@schemathesis.check
def documented_values_are_accepted(ctx, response, case) -> None:
    if response.status_code != 422 or case.meta is None:
        return
    if not case.meta.generation.mode.is_positive:
        return
    errors = response.json().get("errors") or {"?": [response.json().get("detail", "")]}
    refused = [
        f"{where}: {message}"
        for where, messages in errors.items()
        for message in messages
        if not stated_in_words(where, message)
    ]
    if refused:
        raise AssertionError("a value the document allows was refused: " + "; ".join(refused))
