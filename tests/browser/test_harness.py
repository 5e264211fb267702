"""The browser harness itself: the session Chromium loads loopback pages under a strict
CSP, axe tells an accessible page from one that is not, a phone is 360 CSS px wide,
HttpOnly cookies stay out of scripts' reach, and Secure cookies work over loopback HTTP
(what the portal's tests rely on)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import BrowserContext, Error, Page
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route

from tests.browser.axe import assert_accessible
from tests.browser.live import serve_asgi

CSP = "default-src 'self'"
DOT_SVG = '<svg xmlns="http://www.w3.org/2000/svg" width="1" height="1"/>'


def _page(body: str) -> HTMLResponse:
    return HTMLResponse(
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Harness</title></head><body><main><h1>Harness</h1>{body}</main></body></html>",
        headers={"Content-Security-Policy": CSP},
    )


def _accessible(request: Request) -> Response:
    # the inline script must NOT run: the CSP forbids it
    return _page("<p>Plain text.</p><script>document.body.dataset.inline = 'ran'</script>")


def _no_alt(request: Request) -> Response:
    return _page('<img src="/dot.svg">')


def _dot(request: Request) -> Response:
    return Response(DOT_SVG, media_type="image/svg+xml")


def _set_cookie(request: Request) -> Response:
    name, attributes = request.query_params["name"], request.query_params["attributes"]
    response = PlainTextResponse("set")
    response.headers.append("Set-Cookie", f"{name}=s3cret; {attributes}")
    response.headers.append("Set-Cookie", "visible=yes; Path=/; SameSite=Strict")
    return response


def _echo_cookies(request: Request) -> Response:
    return PlainTextResponse(request.headers.get("cookie", ""))


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    routes = [
        Route("/", _accessible),
        Route("/no-alt", _no_alt),
        Route("/dot.svg", _dot),
        Route("/set-cookie", _set_cookie),
        Route("/cookies", _echo_cookies),
    ]
    with serve_asgi(Starlette(routes=routes)) as bound:
        yield bound


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_a_loopback_page_loads_with_its_csp_in_force(page: Page, port: int, host: str) -> None:
    response = page.goto(f"http://{host}:{port}/")
    assert response is not None
    assert response.headers["content-security-policy"] == CSP
    assert page.title() == "Harness"
    assert page.evaluate("document.body.dataset.inline") is None


@pytest.mark.parametrize("url", ["http://example.com/", "http://192.0.2.1/"])
def test_nothing_outside_loopback_is_reachable(page: Page, url: str) -> None:
    with pytest.raises(Error, match="ERR_NAME_NOT_RESOLVED"):
        page.goto(url)


def test_axe_passes_an_accessible_page_under_the_csp(page: Page, port: int) -> None:
    page.goto(f"http://127.0.0.1:{port}/")
    assert_accessible(page)


def test_axe_fails_an_image_without_alt_text(page: Page, port: int) -> None:
    page.goto(f"http://127.0.0.1:{port}/no-alt")
    with pytest.raises(pytest.fail.Exception) as failure:
        assert_accessible(page, context="the no-alt page")
    assert "on the no-alt page" in str(failure.value)
    assert "image-alt (critical)" in str(failure.value)
    assert str(failure.value).endswith(" at img")


def test_a_phone_is_360_css_pixels_wide(phone: Page, port: int) -> None:
    phone.goto(f"http://127.0.0.1:{port}/")
    assert phone.evaluate("window.innerWidth") == 360
    assert phone.evaluate("matchMedia('(pointer: coarse)').matches") is True


def test_an_httponly_cookie_is_sent_but_invisible_to_scripts(
    context: BrowserContext, page: Page, port: int
) -> None:
    base = f"http://127.0.0.1:{port}"
    page.goto(f"{base}/set-cookie?name=session&attributes=HttpOnly; Path=/; SameSite=Strict")
    page.goto(f"{base}/cookies")
    assert page.inner_text("body") == "session=s3cret; visible=yes"
    assert page.evaluate("document.cookie") == "visible=yes"


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
@pytest.mark.parametrize("name", ["session", "__Host-session"])
def test_a_secure_strict_cookie_round_trips_over_loopback_http(
    context: BrowserContext, page: Page, port: int, host: str, name: str
) -> None:
    # Chromium counts loopback as a secure context, so the portal keeps `Secure` on in
    # the demo and the tests; over plain HTTP to any other address the cookie is dropped
    base = f"http://{host}:{port}"
    attributes = "Secure; HttpOnly; SameSite=Strict; Path=/"
    page.goto(f"{base}/set-cookie?name={name}&attributes={attributes}")
    page.goto(f"{base}/cookies")
    assert page.inner_text("body") == f"{name}=s3cret; visible=yes"
    assert page.evaluate("fetch('/cookies').then(r => r.text())") == f"{name}=s3cret; visible=yes"
    assert [c["secure"] for c in context.cookies() if c["name"] == name] == [True]
