"""Browser-test fixtures: one headless Chromium for the whole session, a fresh context
per test.

The browser is Debian's ``/usr/bin/chromium`` (installed by ``scripts/bootstrap.sh test``)
driven by Playwright's sync API; never ``playwright install``, which downloads browsers
from outside. Every name, and every IP address but 127.0.0.1, resolves to nothing, so
no request leaves the machine. Every test here carries the ``browser`` marker.

While a test holds a page, this thread counts as inside Playwright's event loop: a
browser test's fixtures must be sync (seed data with sync code; serve the app under test
from its own thread, see live.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from tests.browser.chromium import CHROMIUM, LAUNCH_ARGS
from tests.browser.portal_world import Portal, running_portal
from tests.integration.api_world import private_database

TIMEOUT_MS = 10_000
_HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # called with the whole session's items: mark only ours
    for item in items:
        if _HERE in item.path.parents:
            item.add_marker(pytest.mark.browser)


@contextmanager
def _loop_released(loop: asyncio.AbstractEventLoop) -> Iterator[None]:
    asyncio._set_running_loop(None)
    try:
        yield
    finally:
        asyncio._set_running_loop(loop)


@pytest.fixture(scope="session")
def chromium_session() -> Iterator[tuple[Browser, asyncio.AbstractEventLoop]]:
    """The session's one headless Chromium, with the event loop of its Playwright driver.

    Between two sync calls Playwright leaves its loop marked as running in this thread,
    and every asyncio test after it would then fail ("cannot be called from a running
    event loop"): the mark is on only while a test holds :func:`browser`.
    """
    if not CHROMIUM.is_file():
        pytest.fail(
            f"{CHROMIUM} is missing: run scripts/bootstrap.sh test "
            "(or apt-get install -y --no-install-recommends chromium)"
        )
    playwright = sync_playwright().start()
    loop = asyncio.get_running_loop()
    try:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=LAUNCH_ARGS, headless=True
        )
        try:
            with _loop_released(loop):
                yield chromium, loop
        finally:
            chromium.close()
    finally:
        playwright.stop()
        asyncio._set_running_loop(None)


@pytest.fixture
def browser(
    chromium_session: tuple[Browser, asyncio.AbstractEventLoop],
) -> Iterator[Browser]:
    """The session's Chromium, usable for the length of one test."""
    chromium, loop = chromium_session
    asyncio._set_running_loop(loop)
    try:
        yield chromium
    finally:
        asyncio._set_running_loop(None)


def _bounded(context: BrowserContext) -> Iterator[BrowserContext]:
    context.set_default_timeout(TIMEOUT_MS)
    try:
        yield context
    finally:
        context.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    """A fresh context (cookies, storage) for one test, desktop-sized."""
    yield from _bounded(browser.new_context())


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()


@pytest.fixture
def phone_context(browser: Browser) -> Iterator[BrowserContext]:
    """A fresh context for one test as a 360x740 touch phone."""
    phone = browser.new_context(
        viewport={"width": 360, "height": 740}, is_mobile=True, has_touch=True
    )
    yield from _bounded(phone)


@pytest.fixture
def phone(phone_context: BrowserContext) -> Page:
    """A page in :func:`phone_context`."""
    return phone_context.new_page()


@pytest.fixture(scope="session")
def portal(postgres_server_url: str) -> Iterator[Portal]:
    """The demo (simulated sites through the real pipeline) with its portal, once per
    session."""
    with private_database(postgres_server_url) as url, running_portal(url) as running:
        yield running
