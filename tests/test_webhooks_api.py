"""The webhook admin routes: subscriptions, secrets and rotation, deliveries, replay,
redelivery and ping; outbound safety (SSRF) at creation and at delivery; disabling."""

from __future__ import annotations

import dataclasses
from typing import Any

from standardwebhooks import Webhook

from marketsvc.app import create_app
from marketsvc.settings import Settings
from tests.events_feed import feed
from tests.test_metrics import sample, scrape
from tests.test_webhooks_delivery import (
    SUBSCRIPTIONS,
    fast,
    nothing_pending,
    order_burst,
    subscribe,
    until,
)
from tests.webhook_receivers import Receiver


async def test_a_subscription_is_created_shown_changed_and_deleted(
    aiohttp_client: Any, settings: Settings, admin: dict[str, str]
) -> None:
    client = await aiohttp_client(create_app(fast(settings)))
    body = {
        "url": "https://hooks.example.com/a",
        "event_types": ["com.marketsvc.order.placed.v1"],
        "description": "picking",
    }
    resp = await client.post(SUBSCRIPTIONS, json=body, headers=admin)
    assert resp.status == 201, await resp.text()
    created = await resp.json()
    assert created["secret"].startswith("whsec_")
    location = resp.headers["Location"]
    assert location == f"{SUBSCRIPTIONS}/{created['id']}"
    shown = await (await client.get(location, headers=admin)).json()
    assert "secret" not in shown
    assert shown == {k: v for k, v in created.items() if k != "secret"}
    listed = await (await client.get(SUBSCRIPTIONS, headers=admin)).json()
    assert [s["id"] for s in listed] == [created["id"]]
    assert "secret" not in listed[0]

    patch = {"status": "paused", "event_types": None, "description": "all"}
    resp = await client.patch(location, json=patch, headers=admin)
    assert resp.status == 200
    changed = await resp.json()
    assert changed["status"] == "paused"
    assert changed["event_types"] is None
    assert changed["description"] == "all"
    bad = await client.patch(location, json={"status": "disabled"}, headers=admin)
    assert bad.status == 422  # a client pauses or resumes; only the service disables

    resp = await client.delete(f"{SUBSCRIPTIONS}/{created['id']}", headers=admin)
    assert resp.status == 204
    for method in ("get", "delete"):
        gone = await getattr(client, method)(f"{SUBSCRIPTIONS}/{created['id']}", headers=admin)
        assert gone.status == 404
    assert (await client.post(f"{SUBSCRIPTIONS}/{created['id']}/ping", headers=admin)).status == 404


async def test_unsafe_targets_are_refused_at_creation(
    aiohttp_client: Any, settings: Settings, admin: dict[str, str]
) -> None:
    strict = await aiohttp_client(create_app(fast(settings, webhook_allow_private=False)))
    for url in (
        "http://127.0.0.1:9/hook",
        "http://localhost:9/hook",  # a name that resolves to loopback
        "https://169.254.169.254/latest/meta-data",  # cloud metadata (link-local)
        "https://10.0.0.8/hook",
        "https://[::1]/hook",
        "https://0.0.0.0/hook",
        "ftp://hooks.example.com/",
        "https://user:pw@hooks.example.com/",
    ):
        resp = await strict.post(SUBSCRIPTIONS, json={"url": url}, headers=admin)
        assert resp.status == 422, url
        problem = await resp.json()
        assert list(problem["errors"]) == ["body.url"], problem
    sub = await subscribe(strict, admin, "https://1.1.1.1/hook")  # a global address: created
    resp = await strict.patch(
        f"{SUBSCRIPTIONS}/{sub['id']}", json={"url": "http://127.0.0.1/"}, headers=admin
    )
    assert resp.status == 422

    production = dataclasses.replace(fast(settings), environment="production")
    prod = await aiohttp_client(create_app(production))
    resp = await prod.post(SUBSCRIPTIONS, json={"url": "http://hooks.example.com/"}, headers=admin)
    assert resp.status == 422
    assert "https" in (await resp.json())["errors"]["body.url"][0]


async def test_a_target_that_resolves_to_loopback_is_refused_at_delivery(
    aiohttp_client: Any, settings: Settings, admin: dict[str, str]
) -> None:
    """Created while private targets were allowed; sent by an instance that refuses them:
    the name ``localhost`` resolves to 127.0.0.1, the resolver refuses it, nothing is sent."""
    receiver = Receiver()
    await receiver.start()
    try:
        lenient = await aiohttp_client(create_app(fast(settings)))
        by_name = await subscribe(lenient, admin, receiver.url.replace("127.0.0.1", "localhost"))
        literal = await subscribe(lenient, admin, receiver.url)
        await lenient.close()
        strict = await aiohttp_client(create_app(fast(settings, webhook_allow_private=False)))
        for sub in (by_name, literal):
            resp = await strict.post(f"{SUBSCRIPTIONS}/{sub['id']}/ping", headers=admin)
            assert resp.status == 202
            deliveries_url = f"{SUBSCRIPTIONS}/{sub['id']}/deliveries"

            async def attempted(url: str = deliveries_url) -> list[dict[str, Any]]:
                deliveries = await (await strict.get(url, headers=admin)).json()
                return [a for d in deliveries for a in d["attempts"]]

            await until(attempted, 10, "an attempt")
            attempt = (await attempted())[0]
            assert attempt["status_code"] is None
            assert "refused" in attempt["error"], attempt
            assert "127.0.0.1 is a loopback address" in attempt["error"], attempt
            assert attempt["next_attempt_at"] is not None  # retried, in case it changes back
        assert receiver.receipts == []
    finally:
        await receiver.stop()


async def test_rotation_signs_with_both_secrets_and_ping_replay_redeliver_work(
    aiohttp_client: Any, settings: Settings, admin: dict[str, str]
) -> None:
    receiver = Receiver()
    await receiver.start()
    try:
        client = await aiohttp_client(create_app(fast(settings)))
        sub = await subscribe(
            client, admin, receiver.url, event_types=["com.marketsvc.order.placed.v1"]
        )
        base = f"{SUBSCRIPTIONS}/{sub['id']}"
        await order_burst(client, admin, orders=3)
        await until(lambda: len(receiver.accepted()) == 3, 20, "three placements")
        assert {r.event["type"] for r in receiver.receipts} == {"com.marketsvc.order.placed.v1"}

        rotated = await (await client.post(f"{base}/rotate", headers=admin)).json()
        assert rotated["secret"] != sub["secret"]
        assert rotated["previous_secret_expires_at"] is not None
        resp = await client.post(f"{base}/ping", headers=admin)
        assert resp.status == 202
        ping = await resp.json()
        assert ping["type"] == "com.marketsvc.webhook.ping.v1"
        await until(lambda: len(receiver.receipts) == 4, 20, "the ping")
        pinged = receiver.receipts[-1]
        assert pinged.event["data"] == {"subscription_id": sub["id"]}
        assert len(pinged.headers["webhook-signature"].split(" ")) == 2
        for secret in (sub["secret"], rotated["secret"]):  # either secret verifies it
            Webhook(secret).verify(pinged.body, pinged.headers)

        events = await feed(client, admin, type="com.marketsvc.order.placed.v1")
        resp = await client.post(
            f"{base}/replay", json={"after": events[0]["cursor"]}, headers=admin
        )
        assert resp.status == 202
        assert await resp.json() == {"deliveries": 2}
        await until(lambda: len(receiver.receipts) == 6, 20, "the replay")
        replayed = [r.event["id"] for r in receiver.receipts[4:]]
        assert replayed == [e["id"] for e in events[1:]]

        since = {"since": "2000-01-01T00:00:00Z"}
        resp = await client.post(f"{base}/replay", json=since, headers=admin)
        assert await resp.json() == {"deliveries": 3}
        await until(lambda: len(receiver.receipts) == 9, 20, "the replay since")
        for bad in ({}, {"after": "0-1", "since": "2000-01-01T00:00:00Z"}, {"after": "x"}):
            assert (await client.post(f"{base}/replay", json=bad, headers=admin)).status == 422

        await until(lambda: nothing_pending(client, admin), 20, "every attempt recorded")
        deliveries = await (await client.get(f"{base}/deliveries", headers=admin)).json()
        assert len(deliveries) == 9
        assert all(d["status"] == "delivered" and d["attempt_count"] == 1 for d in deliveries)
        assert deliveries[0]["attempts"][0]["status_code"] == 200
        resp = await client.post(
            f"/api/v1/webhooks/deliveries/{deliveries[0]['id']}/redeliver", headers=admin
        )
        assert resp.status == 202
        again = await resp.json()
        assert again["event_id"] == deliveries[0]["event_id"]
        assert again["id"] != deliveries[0]["id"]
        await until(lambda: len(receiver.receipts) == 10, 20, "the redelivery")
        assert receiver.receipts[-1].event["id"] == deliveries[0]["event_id"]
        missing = await client.post("/api/v1/webhooks/deliveries/999999/redeliver", headers=admin)
        assert missing.status == 404
        page = await client.get(f"{base}/deliveries?limit=4&status=delivered", headers=admin)
        assert len(await page.json()) == 4
        assert 'rel="next"' in page.headers["Link"]
    finally:
        await receiver.stop()


async def test_a_subscription_failing_too_long_is_disabled_and_an_event_says_so(
    aiohttp_client: Any, settings: Settings, admin: dict[str, str]
) -> None:
    receiver = Receiver(fail_first=1_000_000)
    await receiver.start()
    try:
        config = fast(settings, webhook_disable_after_seconds=0.5, webhook_retry_for_seconds=0.3)
        client = await aiohttp_client(create_app(config))
        sub = await subscribe(client, admin, receiver.url)
        base = f"{SUBSCRIPTIONS}/{sub['id']}"

        async def disabled() -> bool:
            return (await (await client.get(base, headers=admin)).json())["status"] == "disabled"

        for _ in range(3):
            await client.post(f"{base}/ping", headers=admin)
        await until(disabled, 20, "disabled")
        shown = await (await client.get(base, headers=admin)).json()
        assert shown["failing_since"] is not None
        [event] = await feed(client, admin, type="com.marketsvc.webhook_subscription.disabled.v1")
        assert event["subject"] == f"webhook_subscriptions/{sub['id']}"
        assert event["data"]["status"] == "disabled"
        assert "secret" not in event["data"]
        deliveries = await (await client.get(f"{base}/deliveries", headers=admin)).json()
        assert any(d["status"] == "failed" for d in deliveries)  # retried past its time: failed
        metrics = await scrape(client)
        assert sample(metrics, "marketsvc_webhook_deliveries_total", outcome="failed") >= 1
        assert sample(metrics, "marketsvc_webhook_deliveries_total", outcome="retrying") >= 1
        assert sample(metrics, "marketsvc_webhook_attempt_duration_seconds_count") >= 2

        seen = len(receiver.receipts)  # disabled: nothing more is sent
        await client.post(f"{base}/ping", headers=admin)
        resumed = await client.patch(base, json={"status": "active"}, headers=admin)
        assert (await resumed.json())["failing_since"] is None
        await until(lambda: len(receiver.receipts) > seen, 20, "sent again once resumed")
    finally:
        await receiver.stop()
