"""The portal's web UI through the API gateway: a real nginx (``broker_config.nginx``'s
config) in front of a real portal process (uvicorn, the API with the web UI over
``api_world``'s fleet), signing in with the real identity service.

What the gateway must not break: the sign-in pages and static files reach the portal
region's pool, each region's pages reach its own; the browser's ``Host`` arrives as sent
(the CSRF check compares it with ``Origin``); the portal's ``Set-Cookie`` headers reach the
browser unchanged. Cookies are sent by hand (``Cookie:``): httpx keeps no ``Secure``
cookie for plain ``http://127.0.0.1``, and the portal sets them all ``Secure``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from broker_config.nginx import GatewayConfig, Upstream
from cloud.bootstrap import create_api, create_web_ui
from cloud.identity import Role
from cloud.keyfiles import public_key_path
from cloud.portal import PortalSettings
from cloud.portal.web.assets import Assets
from contracts.topics import Region
from potr.servers.nginx import PrivateNginx
from potr.servers.ports import free_port
from tests.api_tokens import mint_token
from tests.browser.live import serve_asgi
from tests.integration.api_world import Tenant, api_world, private_database
from tests.integration.identity_harness import PASSWORD, IdentityStack, identity_stack

pytestmark = pytest.mark.integration

_CSRF_FIELD = re.compile(r'name="csrf_token" value="([A-Za-z0-9_-]{43})"')


@dataclass(frozen=True)
class Portal:
    gateway: str  # the gateway's base URL
    direct: str  # the portal process's own
    identity: IdentityStack
    tenant: Tenant  # account A's (au)
    other: Tenant  # account B's (au)
    email: str  # A's customer's sign-in


@pytest.fixture(scope="module")
def portal(postgres_server_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Portal]:
    workdir = tmp_path_factory.mktemp("gateway-portal")
    with (
        private_database(postgres_server_url) as url,
        api_world(url, workdir) as world,
        identity_stack(url, workdir) as identity,
    ):
        tenant = world.tenants["A"]
        user = identity.add_user(Role.CUSTOMER, account_id=tenant.account)
        signing = identity.settings.identity_signing_key_file
        assert signing is not None
        settings = PortalSettings(
            env="test", database_url=url, identity_public_key_file=public_key_path(signing)
        )
        web = create_web_ui(settings, world.pool, identity=identity.service)
        app = create_api(settings, world.pool, web=web)
        with serve_asgi(app) as port:
            # The portal serves au; the other regions' pools are addresses where nothing
            # listens (no request of these tests goes there).
            nginx = PrivateNginx(
                GatewayConfig(
                    listen_host="127.0.0.1",
                    listen_port=free_port(),
                    regions={
                        Region.AU: (Upstream("127.0.0.1", port),),
                        Region.US: (Upstream("127.0.0.1", free_port()),),
                        Region.ES: (Upstream("127.0.0.1", free_port()),),
                    },
                    identity=(Upstream("127.0.0.1", free_port()),),
                    min_servers=1,
                    worker_processes=1,
                )
            )
            try:
                nginx.start()
                yield Portal(
                    nginx.url,
                    f"http://127.0.0.1:{port}",
                    identity,
                    tenant,
                    world.tenants["B"],
                    user.email,
                )
            finally:
                nginx.cleanup()


def _cookie(role: Role, tenant: Tenant, identity: IdentityStack) -> dict[str, str]:
    token = mint_token(role, account_id=tenant.account, key=identity.key)
    return {"Cookie": f"potr_session={token}"}


def _set_cookies(answer: httpx.Response) -> dict[str, str]:
    """Cookie name → its whole ``Set-Cookie`` value."""
    return {v.split("=", 1)[0]: v for v in answer.headers.get_list("set-cookie")}


def test_the_sign_in_page_comes_through_the_gateway_with_its_cookie_unchanged(
    portal: Portal,
) -> None:
    via = httpx.get(portal.gateway + "/login")
    direct = httpx.get(portal.direct + "/login")
    assert via.status_code == 200
    assert 'action="/login"' in via.text
    # The CSRF cookie: a new token each time, every attribute as the portal set it.
    token = re.compile(r"potr_csrf=[A-Za-z0-9_-]{43};")
    got, expected = _set_cookies(via)["potr_csrf"], _set_cookies(direct)["potr_csrf"]
    assert token.sub("potr_csrf=T;", got) == token.sub("potr_csrf=T;", expected)
    for attribute in ("HttpOnly", "Path=/", "SameSite=strict", "Secure"):
        assert attribute in got.split("; ")


def test_a_page_without_a_session_redirects_to_sign_in(portal: Portal) -> None:
    answer = httpx.get(portal.gateway + "/ui/au/")
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/login")


def test_a_customers_pages_come_through_the_gateway_with_a_session_cookie(
    portal: Portal,
) -> None:
    cookie = _cookie(Role.CUSTOMER, portal.tenant, portal.identity)
    home = httpx.get(portal.gateway + "/ui/au/", headers=cookie)
    assert home.status_code == 200
    assert "site A" in home.text
    site = f"/ui/au/sites/{portal.tenant.site}"
    assert httpx.get(portal.gateway + site, headers=cookie).status_code == 200
    assert httpx.get(portal.gateway + site + "/live", headers=cookie).status_code == 200
    other = f"/ui/au/sites/{portal.other.site}"  # B's site: not found for A
    assert httpx.get(portal.gateway + other, headers=cookie).status_code == 404


def test_a_static_asset_comes_through_the_gateway_cached_for_its_version(
    portal: Portal,
) -> None:
    url = Assets().url("portal.css")  # /static/portal.css?v=<digest>
    answer = httpx.get(portal.gateway + url)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/css")
    assert answer.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert answer.content == httpx.get(portal.direct + url).content


def _signed_in(portal: Portal, origin: str) -> httpx.Response:
    form_page = httpx.get(portal.gateway + "/login")
    match = _CSRF_FIELD.search(form_page.text)
    assert match is not None
    csrf = match.group(1)
    return httpx.post(
        portal.gateway + "/login",
        data={"email": portal.email, "password": PASSWORD, "csrf_token": csrf, "next": ""},
        headers={"Origin": origin, "Cookie": f"potr_csrf={csrf}"},
    )


def test_signing_in_through_the_gateway_sets_a_session_that_opens_the_pages(
    portal: Portal,
) -> None:
    # The browser's Origin is the gateway's host:port; the portal compares it with the
    # Host it receives, so the gateway must pass the Host on as sent, port included.
    answer = _signed_in(portal, origin=portal.gateway)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/ui/au/"
    cookies = _set_cookies(answer)
    assert {"potr_session", "potr_refresh"} <= set(cookies)
    session = cookies["potr_session"].split(";", 1)[0]
    home = httpx.get(portal.gateway + "/ui/au/", headers={"Cookie": session})
    assert home.status_code == 200
    assert "site A" in home.text


def test_a_sign_in_posted_from_another_origin_is_refused_through_the_gateway(
    portal: Portal,
) -> None:
    answer = _signed_in(portal, origin="http://127.0.0.1:9")
    assert answer.status_code == 403
    assert "potr_session" not in _set_cookies(answer)


def test_paths_of_no_route_are_still_answered_by_the_gateway(portal: Portal) -> None:
    for path in ("/ui/au", "/static", "/docs", "/login/x", "/favicon.ico"):
        answer = httpx.get(portal.gateway + path)
        assert (answer.status_code, answer.json()) == (404, {"detail": "no such route"}), path
