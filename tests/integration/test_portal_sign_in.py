"""Signing in to the portal over HTTP, on the identity service and the world's data:
the session cookies and their attributes, refusals that say one thing, CSRF on the
sign-in form, no open redirect, the language switch; and what every page carries —
versioned immutable assets and a strict Content Security Policy."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from cloud.identity import Role, UserIn
from contracts.topics import Region
from tests.integration.api_world import World, api_world, private_database

pytestmark = [pytest.mark.integration, pytest.mark.security]

EMAIL = "sign-in-a@example.com"
PASSWORD = "a long enough password 1"
MOSIE_NO = "E7701"
#: The MOSIE's first PIN (identity returns it once, when the user is made).
PINS: dict[str, str] = {}


@pytest.fixture(scope="module")
def world(postgres_server_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with private_database(postgres_server_url) as url:
        key_dir: Path = tmp_path_factory.mktemp("sign-in")
        with api_world(url, key_dir) as built:
            assert built.identity is not None
            built.identity.create_user(
                UserIn(
                    email=EMAIL, display_name="A", role=Role.CUSTOMER, home_region=Region.AU,
                    account_id=built.tenants["A"].account, password=PASSWORD,
                ),
                actor="test",
            )  # fmt: skip
            mosie = built.identity.create_user(
                UserIn(
                    email="sign-in-mosie@example.com", display_name="M", role=Role.MOSIE,
                    home_region=Region.AU, employee_no=MOSIE_NO,
                ),
                actor="test",
            )  # fmt: skip
            assert mosie.pin is not None
            PINS[MOSIE_NO] = mosie.pin
            yield built


def _client(world: World) -> TestClient:
    return TestClient(world.app, base_url="https://testserver", raise_server_exceptions=False)


def _csrf(client: TestClient) -> str:
    page = client.get("/login")
    assert page.status_code == 200
    token = client.cookies.get("potr_csrf")
    assert token
    assert f'value="{token}"' in page.text  # the form carries it
    return str(token)


def test_sign_in_sets_httponly_strict_secure_cookies_and_lands_home(world: World) -> None:
    with _client(world) as client:
        token = _csrf(client)
        answer = client.post(
            "/login",
            data={"email": EMAIL, "password": PASSWORD, "csrf_token": token},
            follow_redirects=False,
        )
        assert answer.status_code == 303
        assert answer.headers["location"] == "/ui/au/"
        cookies = {c.split("=", 1)[0]: c for c in answer.headers.get_list("set-cookie")}
        for name in ("potr_session", "potr_refresh"):
            attributes = cookies[name].lower()
            assert "httponly" in attributes
            assert "samesite=strict" in attributes
            assert "secure" in attributes
            assert "path=/" in attributes
        home = client.get("/ui/au/")
        assert home.status_code == 200
        assert "site A" in home.text
        assert "site B" not in home.text


@pytest.mark.parametrize(
    ("asked", "lands"), [("", "/ui/au/jobs"), ("/ui/au/sites/1", "/ui/au/sites/1")]
)
def test_a_mosie_signing_in_lands_on_their_jobs_unless_a_page_was_asked_for(
    world: World, asked: str, lands: str
) -> None:
    with _client(world) as client:
        token = _csrf(client)
        form = {"employee_no": MOSIE_NO, "pin": PINS[MOSIE_NO], "csrf_token": token, "next": asked}
        answer = client.post("/pin-login", data=form, follow_redirects=False)
        assert answer.status_code == 303
        assert answer.headers["location"] == lands
        # The portal's root sends a signed-in MOSIE to their jobs too.
        root = client.get("/", follow_redirects=False)
        assert root.headers["location"] == "/ui/au/jobs"
        jobs = client.get("/ui/au/jobs")
        assert jobs.status_code == 200
        assert "Today's route" in jobs.text


def test_a_wrong_password_is_refused_with_one_message(world: World) -> None:
    with _client(world) as client:
        token = _csrf(client)
        for email in (EMAIL, "nobody@example.com"):
            answer = client.post(
                "/login", data={"email": email, "password": "wrong password", "csrf_token": token}
            )
            assert answer.status_code == 401
            assert "Those details did not match." in answer.text
            assert "potr_session" not in answer.headers.get("set-cookie", "")


def test_sign_in_without_the_csrf_token_is_refused_before_identity_is_asked(world: World) -> None:
    assert world.identity is not None
    before = len(world.identity.audit_log(limit=1000))
    with _client(world) as client:
        _csrf(client)
        answer = client.post("/login", data={"email": EMAIL, "password": PASSWORD})
        assert answer.status_code == 403
        assert "potr_session" not in answer.headers.get("set-cookie", "")
        cross = client.post(
            "/login",
            data={"email": EMAIL, "password": PASSWORD, "csrf_token": client.cookies["potr_csrf"]},
            headers={"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"},
        )
        assert cross.status_code == 403
    assert len(world.identity.audit_log(limit=1000)) == before


@pytest.mark.parametrize(
    "target", ["https://evil.example/", "//evil.example/ui/au/", "/ui/au/../../x", "/login"]
)
def test_no_open_redirect_after_sign_in(world: World, target: str) -> None:
    with _client(world) as client:
        token = _csrf(client)
        answer = client.post(
            "/login",
            data={"email": EMAIL, "password": PASSWORD, "csrf_token": token, "next": target},
            follow_redirects=False,
        )
        assert answer.status_code == 303
        assert answer.headers["location"] == "/ui/au/"


def test_the_language_switch_turns_pages_spanish(world: World) -> None:
    with _client(world) as client:
        token = _csrf(client)
        client.post("/login", data={"email": EMAIL, "password": PASSWORD, "csrf_token": token})
        switched = client.post(
            "/language",
            data={"language": "es", "next": "/ui/au/", "csrf_token": token},
            follow_redirects=False,
        )
        assert switched.status_code == 303
        page = client.get("/ui/au/")
        assert '<html lang="es">' in page.text
        assert "Mis instalaciones" in page.text


def test_pages_carry_a_strict_policy_and_versioned_immutable_assets(world: World) -> None:
    with _client(world) as client:
        page = client.get("/login")
        csp = page.headers["content-security-policy"]
        assert "script-src 'self'" in csp
        assert "frame-ancestors 'none'" in csp
        assert "unsafe-inline" not in csp
        assert page.headers["cache-control"] == "no-store"
        assert "<script>" not in page.text  # no inline script
        urls = re.findall(r'(?:src|href)="(/static/[^"]+)"', page.text)
        assert any("htmx.org-2.0.11/htmx.min.js?v=" in u for u in urls), urls
        for url in urls:
            asset = client.get(url)
            assert asset.status_code == 200, url
            assert asset.headers["cache-control"] == "public, max-age=31536000, immutable"
        stale = client.get(urls[0].split("?")[0] + "?v=0000000000000000")
        assert stale.headers["cache-control"] == "no-cache"
        for path in ("/healthz", "/docs", "/api/v1/au/sites"):
            assert "content-security-policy" not in client.get(path).headers, path


@pytest.mark.parametrize(
    "form",
    [
        {"email": "a\x00b@example.com", "password": PASSWORD},
        {"email": EMAIL, "password": "x\x00y"},
        {"email": "x" * 300, "password": PASSWORD},
        {"email": EMAIL},
    ],
)
def test_malformed_sign_in_forms_answer_a_page_not_a_500(
    world: World, form: dict[str, str]
) -> None:
    with _client(world) as client:
        token = _csrf(client)
        answer = client.post("/login", data=form | {"csrf_token": token})
        assert answer.status_code in (401, 422), answer.text[:300]
        assert "potr_session" not in answer.headers.get("set-cookie", "")
