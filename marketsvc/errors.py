"""Domain errors raised by accessors and handlers; one middleware turns them into problem+json."""

from __future__ import annotations

from collections.abc import Iterable


class DomainError(Exception):
    """``errors`` keys say where each entry came from: ``body.<path>``, ``query.<name>`` or
    ``header.<Name>``; the problem's type and title follow from ``status``."""

    status = 400

    def __init__(self, detail: str, errors: dict[str, list[str]] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors


class NotFound(DomainError):
    status = 404


class CustomerNotFound(NotFound):
    def __init__(self, customer_id: int) -> None:
        super().__init__(f"customer {customer_id} does not exist")


class ItemNotFound(NotFound):
    def __init__(self, item_id: int) -> None:
        super().__init__(f"item {item_id} does not exist")


class OrderNotFound(NotFound):
    def __init__(self, order_id: int) -> None:
        super().__init__(f"order {order_id} does not exist")


class UserNotFound(NotFound):
    def __init__(self, user_id: int) -> None:
        super().__init__(f"user {user_id} does not exist")


class PetNotFound(NotFound):
    def __init__(self, pet_id: int) -> None:
        super().__init__(f"pet {pet_id} does not exist")


class SellerNotFound(NotFound):
    def __init__(self, seller_id: int) -> None:
        super().__init__(f"seller {seller_id} does not exist")


class NotAcceptable(DomainError):
    status = 406


class Conflict(DomainError):
    status = 409


class EmailTaken(Conflict):
    def __init__(self, email: str) -> None:
        super().__init__(
            f"a customer with email {email!r} already exists",
            {"body.email": ["A customer with this email already exists."]},
        )


class OutOfStock(Conflict):
    def __init__(self, item_ids: Iterable[int]) -> None:
        self.item_ids = sorted(item_ids)
        super().__init__(
            "not enough stock for items " + ", ".join(map(str, self.item_ids)),
            {"body.lines": [f"Not enough stock for item {i}." for i in self.item_ids]},
        )


class SellerSuspendedItems(Conflict):
    """Items that cannot be ordered: their seller is suspended."""

    def __init__(self, item_ids: Iterable[int]) -> None:
        self.item_ids = sorted(item_ids)
        super().__init__(
            "the seller of items " + ", ".join(map(str, self.item_ids)) + " is suspended",
            {"body.lines": [f"Item {i}: its seller is suspended." for i in self.item_ids]},
        )


class IllegalTransition(Conflict):
    def __init__(self, current: str, target: str) -> None:
        super().__init__(f"an order cannot move from {current!r} to {target!r}")


class InvalidInput(DomainError):
    """Well-formed input that names something that does not exist or cannot be used."""

    status = 422

    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__("the request is not valid: " + ", ".join(sorted(errors)), errors)


class InvalidRequest(InvalidInput):
    """The request broke its declared schema: refused before anything was tried (so an
    Idempotency-Key stays free for the corrected request)."""


class Unauthorized(DomainError):
    status = 401


class Forbidden(DomainError):
    status = 403


class SellerSuspended(Forbidden):
    def __init__(self, seller_id: int) -> None:
        super().__init__(f"seller {seller_id} is suspended: its token may read but not change")


class CursorExpired(DomainError):
    status = 410

    def __init__(self, cursor: str) -> None:
        super().__init__(
            f"events after cursor {cursor!r} are past retention and were deleted: resynchronise "
            "(read the resources afresh) and follow the feed from its start",
            {"query.after": ["Older than the events kept."]},
        )


class NotConfigured(DomainError):
    """A feature whose settings are missing: the service cannot answer until they are set."""

    status = 503


class SellerOrderNotFound(NotFound):
    def __init__(self, part_id: int) -> None:
        super().__init__(f"seller order {part_id} does not exist")


class IllegalPartTransition(Conflict):
    def __init__(self, part_id: int, current: str, target: str) -> None:
        super().__init__(f"seller order {part_id} cannot move from {current!r} to {target!r}")


class StatusFollowsParts(Conflict):
    def __init__(self, target: str) -> None:
        super().__init__(
            f"an order becomes {target!r} only through its seller orders: each seller moves its "
            "own part (PATCH /api/v1/seller-orders/{id}) and the order's status follows"
        )


class PartsAccepted(Conflict):
    def __init__(self, order_id: int, parts: list[tuple[int, str]]) -> None:
        named = ", ".join(f"{part_id} ({status})" for part_id, status in parts)
        super().__init__(
            f"order {order_id} cannot be cancelled: its sellers have taken on seller orders "
            f"{named}; a seller may refuse its part instead"
        )
