"""Headless Chromium opens /api/docs: every operation listed, one expanded, a screenshot kept.

Chromium comes from Debian (scripts/install-browser); Playwright only drives it. The screenshot
is artifacts/docs-page.png, which CI keeps.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from marketsvc.app import create_app
from marketsvc.settings import Settings
from marketsvc.web.openapi import build_document
from tests.live import ROOT

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
    "--disable-dev-shm-usage",
]
SCREENSHOT = ROOT / "artifacts" / "docs-page.png"


@pytest.mark.skipif(not CHROMIUM.exists(), reason="no /usr/bin/chromium (scripts/install-browser)")
async def test_docs_page_lists_every_operation_and_expands_one(
    aiohttp_client, tmp_path, capsys
) -> None:
    from playwright.async_api import async_playwright

    # The docs need no database: a path that is never opened is enough.
    app = create_app(Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'unused.db'}"))
    client = await aiohttp_client(app)
    operations = sum(len(ops) for ops in build_document(app)["paths"].values())
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page(viewport={"width": 1280, "height": 1600})
            external = []
            page.on(
                "request",
                lambda r: external.append(r.url) if "127.0.0.1" not in r.url else None,
            )
            await page.goto(str(client.make_url("/api/docs")))
            await page.wait_for_selector(".opblock", timeout=20_000)
            assert await page.locator(".opblock").count() == operations
            assert await page.locator(".opblock-summary-path", has_text="/api/v1/items").count()
            post_item = page.locator(".opblock-post", has_text="/api/v1/items").first
            await post_item.locator(".opblock-summary").click()
            await page.wait_for_selector(".opblock.is-open", timeout=10_000)
            opened = page.locator(".opblock.is-open")
            assert await opened.locator(".responses-table").count()
            assert "422" in await opened.inner_text()
            SCREENSHOT.parent.mkdir(exist_ok=True)
            await page.screenshot(path=str(SCREENSHOT), full_page=True)
        finally:
            await browser.close()
    assert external == []  # every asset came from the service itself
    assert SCREENSHOT.stat().st_size > 10_000
    with capsys.disabled():  # shown in every run, not only with -s
        print(f"\ndocs page screenshot: {SCREENSHOT}")
