"""Browser tests: headless Chromium (Debian's) driven by Playwright against a real `shop up`.

One `shop up` of the whole chart plus a flaky sink per module; one browser profile per module;
a fresh page per test. Screenshots of key steps, and of every failure, go to
test-artifacts/browser/.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, ConsoleMessage, Page, expect, sync_playwright

from tests.conftest import require
from tests.integration.deadletter.topology import observed_shop
from tests.support.shop_up import REPO_ROOT, ShopUp

CHROMIUM = Path("/usr/bin/chromium")
# Events cross the broker and several services before the page shows them.
TIMEOUT_MS = 20_000
ARTIFACTS = REPO_ROOT / "test-artifacts" / "browser"
# The flags that work as root on these machines, without background networking
# (../shared/docs/browser-tests.md); the profile directory comes per run.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Iterator[None]:
    """Remember each phase's outcome on the test item, so a fixture can see a failure."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    setattr(item, f"report_{report.when}", report)


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ShopUp]:
    with observed_shop(tmp_path_factory.mktemp("browser")) as running:
        yield running


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrowserContext]:
    require(CHROMIUM.exists(), f"{CHROMIUM} is missing: apt-get install -y chromium")
    expect.set_options(timeout=TIMEOUT_MS)
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),
            executable_path=str(CHROMIUM),
            args=CHROMIUM_FLAGS,
            headless=True,
            viewport={"width": 1400, "height": 900},
        )
        try:
            yield context
        finally:
            context.close()


class ViewerPage:
    """A page on the viewer, with what it loaded and what went wrong in it."""

    def __init__(self, page: Page, origin: str, name: str) -> None:
        self.page = page
        self.origin = origin
        self.name = name
        self.requested: list[str] = []
        self.errors: list[str] = []
        self.expected_errors: list[str] = []
        page.on("request", lambda request: self.requested.append(request.url))
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        page.on("console", self._console)

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(message.text)

    def open(self, tab: str = "events") -> Page:
        self.page.goto(f"{self.origin}/#{tab}")
        self.page.wait_for_selector("#connection.pill-live")
        return self.page

    def screenshot(self, step: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{self.name}-{step}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def expect_error(self, text: str) -> None:
        """A console error the test provokes on purpose (e.g. Chrome logging a 400)."""
        self.expected_errors.append(text)

    def unexpected_errors(self) -> list[str]:
        return [e for e in self.errors if not any(text in e for text in self.expected_errors)]

    def tab(self, name: str) -> None:
        self.page.click(f".tabs button[data-tab={name}]")


@pytest.fixture
def viewer(
    request: pytest.FixtureRequest, shop: ShopUp, browser: BrowserContext
) -> Iterator[ViewerPage]:
    name = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:80]
    page = browser.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    wrapped = ViewerPage(page, shop.url("viewer"), name)
    yield wrapped
    failed = getattr(request.node, "report_call", None)
    if failed is not None and failed.failed:
        wrapped.screenshot("failure")
    page.close()
    unexpected = wrapped.unexpected_errors()
    assert not unexpected, f"the page reported errors: {unexpected}"
