"""Identity's REST API against real PostgreSQL and a real SMTP sink: sessions, PINs,
password reset by mail, API keys, users and the audit (scenario 15 is in
test_scenario15_auth_abuse.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cloud.identity import Role, verify_access_token
from tests.integration.identity_harness import PASSWORD, IdentityStack, identity_stack
from tests.waiting import until

pytestmark = pytest.mark.integration


@pytest.fixture
def identity(database_url: str, tmp_path: Path) -> Iterator[IdentityStack]:
    with identity_stack(database_url, tmp_path) as stack:
        yield stack


async def test_a_login_starts_a_session_that_refreshes_and_ends(identity: IdentityStack) -> None:
    user = identity.add_user(Role.CUSTOMER, account_id="acc_" + "1" * 32, home_region="es")
    async with identity.client() as client:
        login = await client.post(
            "/api/v1/auth/login", json={"email": user.email.upper(), "password": PASSWORD}
        )
        assert login.status_code == 200, login.text
        assert login.headers["cache-control"] == "no-store"
        pair = login.json()
        principal = verify_access_token(pair["access_token"], identity.service.public_keys)
        assert (principal.subject, principal.role, principal.region) == (user.id, "customer", "es")
        assert principal.account_id == "acc_" + "1" * 32
        assert pair["expires_in"] == 900

        me = await client.get(
            "/api/v1/auth/me", headers={"Authorization": f"Bearer {pair['access_token']}"}
        )
        assert me.json()["email"] == user.email

        renewed = await client.post(
            "/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]}
        )
        assert renewed.status_code == 200
        assert renewed.json()["refresh_token"] != pair["refresh_token"]
        out = await client.post(
            "/api/v1/auth/logout", json={"refresh_token": renewed.json()["refresh_token"]}
        )
        assert out.status_code == 204
        after = await client.post(
            "/api/v1/auth/refresh", json={"refresh_token": renewed.json()["refresh_token"]}
        )
        assert after.status_code == 401


async def test_employees_log_in_with_their_number_and_pin(identity: IdentityStack) -> None:
    mosie = identity.add_user(Role.MOSIE, employee_no="m-0042", password=None)
    assert mosie.pin is not None
    assert mosie.employee_no == "M-0042"
    async with identity.client() as client:
        login = await client.post(
            "/api/v1/auth/pin-login", json={"employee_no": "m-0042", "pin": mosie.pin}
        )
        assert login.status_code == 200, login.text
        principal = verify_access_token(login.json()["access_token"], identity.service.public_keys)
        assert (principal.role, principal.employee_no) == ("mosie", "M-0042")
        # No password was set: a password login fails like any other.
        no_password = await client.post(
            "/api/v1/auth/login", json={"email": mosie.email, "password": PASSWORD}
        )
        assert no_password.status_code == 401


async def test_a_password_is_reset_by_a_one_time_token_sent_by_mail(
    identity: IdentityStack,
) -> None:
    user = identity.add_user(Role.SUPPORT)
    async with identity.client() as client:
        old = (
            await client.post(
                "/api/v1/auth/login", json={"email": user.email, "password": PASSWORD}
            )
        ).json()
        unknown = await client.post(
            "/api/v1/auth/password-reset/request", json={"email": "nobody@potr.example"}
        )
        known = await client.post("/api/v1/auth/password-reset/request", json={"email": user.email})
        assert unknown.status_code == known.status_code == 202
        assert unknown.json() == known.json()
        await until(lambda: len(identity.mails.messages), 10, "the reset mail")
        assert [m["To"] for m in identity.mails.messages] == [user.email]
        token = identity.mails.reset_token(user.email)

        weak = await client.post(
            "/api/v1/auth/password-reset/confirm", json={"token": token, "new_password": "short"}
        )
        assert weak.status_code == 400
        assert "at least 12" in weak.json()["detail"]
        new = "a brand new passphrase for support"
        done = await client.post(
            "/api/v1/auth/password-reset/confirm", json={"token": token, "new_password": new}
        )
        assert done.status_code == 204
        again = await client.post(
            "/api/v1/auth/password-reset/confirm", json={"token": token, "new_password": new + "!"}
        )
        assert again.status_code == 400

        assert (
            await client.post("/api/v1/auth/login", json={"email": user.email, "password": new})
        ).status_code == 200
        assert (
            await client.post(
                "/api/v1/auth/login", json={"email": user.email, "password": PASSWORD}
            )
        ).status_code == 401
        # The sessions from before the reset are over.
        stale = await client.post(
            "/api/v1/auth/refresh", json={"refresh_token": old["refresh_token"]}
        )
        assert stale.status_code == 401


async def test_api_keys_log_machines_in_with_no_more_than_their_scopes(
    identity: IdentityStack,
) -> None:
    admin, operator = identity.add_user(Role.ADMIN), identity.add_user(Role.OPERATOR)
    async with identity.client() as client:
        made = await client.post(
            f"/api/v1/auth/users/{operator.id}/api-keys",
            json={"name": "exporter", "scopes": ["read"]},
            headers=identity.bearer(admin),
        )
        assert made.status_code == 201, made.text
        key = made.json()["key"]
        assert key.startswith("pak_")
        assert made.json()["scopes"] == ["read"]
        listed = await client.get(
            f"/api/v1/auth/users/{operator.id}/api-keys", headers=identity.bearer(admin)
        )
        assert "key" not in listed.json()[0]

        login = await client.post("/api/v1/auth/api-key-login", json={"api_key": key})
        assert login.status_code == 200, login.text
        assert "refresh_token" not in login.json()
        principal = verify_access_token(login.json()["access_token"], identity.service.public_keys)
        assert (principal.subject, principal.scopes) == (operator.id, frozenset({"read"}))

        beyond = await client.post(
            f"/api/v1/auth/users/{operator.id}/api-keys",
            json={"name": "too much", "scopes": ["admin"]},
            headers=identity.bearer(admin),
        )
        assert beyond.status_code == 400
        revoked = await client.delete(
            f"/api/v1/auth/api-keys/{made.json()['id']}", headers=identity.bearer(admin)
        )
        assert revoked.json()["revoked_at"] is not None
        refused = await client.post("/api/v1/auth/api-key-login", json={"api_key": key})
        assert refused.status_code == 401


async def test_only_admins_manage_users_and_bodies_cannot_set_stored_fields(
    identity: IdentityStack,
) -> None:
    admin, operator = identity.add_user(Role.ADMIN), identity.add_user(Role.OPERATOR)
    body = {"email": "new@potr.example", "display_name": "New", "role": "admin",
            "home_region": "us"}  # fmt: skip
    async with identity.client() as client:
        assert (await client.post("/api/v1/auth/users", json=body)).status_code == 401
        as_operator = await client.post(
            "/api/v1/auth/users", json=body, headers=identity.bearer(operator)
        )
        assert as_operator.status_code == 403
        sneaky = await client.post(
            "/api/v1/auth/users",
            json=body | {"password_hash": "$argon2id$forged"},
            headers=identity.bearer(admin),
        )
        assert sneaky.status_code == 422
        made = await client.post("/api/v1/auth/users", json=body, headers=identity.bearer(admin))
        assert made.status_code == 201, made.text
        dup = await client.post(
            "/api/v1/auth/users",
            json=body | {"email": "NEW@potr.example"},
            headers=identity.bearer(admin),
        )
        assert dup.status_code == 409
        assert "email" in dup.json()["detail"]
        customer_pin = await client.post(
            "/api/v1/auth/users",
            json=body | {"email": "c@potr.example", "role": "customer", "employee_no": "E1"},
            headers=identity.bearer(admin),
        )
        assert customer_pin.status_code == 400


async def test_a_role_change_is_audited_and_applies_at_the_next_refresh(
    identity: IdentityStack,
) -> None:
    admin, user = identity.add_user(Role.ADMIN), identity.add_user(Role.SUPPORT)
    async with identity.client() as client:
        pair = (
            await client.post(
                "/api/v1/auth/login", json={"email": user.email, "password": PASSWORD}
            )
        ).json()
        changed = await client.patch(
            f"/api/v1/auth/users/{user.id}", json={"role": "operator"},
            headers=identity.bearer(admin),
        )  # fmt: skip
        assert changed.json()["role"] == "operator"
        renewed = await client.post(
            "/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]}
        )
        role = verify_access_token(
            renewed.json()["access_token"], identity.service.public_keys
        ).role
        assert role is Role.OPERATOR
        audit = await client.get(
            "/api/v1/auth/audit", params={"user_id": user.id, "action": "role.changed"},
            headers=identity.bearer(admin),
        )  # fmt: skip
        [entry] = audit.json()
        assert (entry["actor"], entry["detail"]) == (
            admin.id,
            {"from": "support", "to": "operator"},
        )
    assert ("user.updated", user.id) in [(n, p["user_id"]) for n, p in identity.outbox()]


async def test_disabling_a_user_ends_their_sessions_and_announces_their_broker_identity(
    identity: IdentityStack,
) -> None:
    admin = identity.add_user(Role.ADMIN)
    tech = identity.add_user(Role.MOSIE, employee_no="T-9", broker_username="_tech/tess")
    async with identity.client() as client:
        pair = (
            await client.post(
                "/api/v1/auth/login", json={"email": tech.email, "password": PASSWORD}
            )
        ).json()
        yourself = await client.post(
            f"/api/v1/auth/users/{admin.id}/disable", headers=identity.bearer(admin)
        )
        assert yourself.status_code == 400
        done = await client.post(
            f"/api/v1/auth/users/{tech.id}/disable", headers=identity.bearer(admin)
        )
        assert done.json()["disabled_at"] is not None
        refresh = await client.post(
            "/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]}
        )
        assert refresh.status_code == 401
        login = await client.post(
            "/api/v1/auth/login", json={"email": tech.email, "password": PASSWORD}
        )
        assert login.status_code == 401
        assert login.json()["detail"] == "invalid credentials"
    disabled = [p for n, p in identity.outbox() if n == "user.disabled"]
    assert disabled == [
        {"user_id": tech.id, "role": "mosie", "home_region": "au", "account_id": None,
         "employee_no": "T-9", "broker_username": "_tech/tess", "disabled": True}
    ]  # fmt: skip
    actions = [e.action for e in identity.service.audit_log(user_id=tech.id)]
    assert actions[:3] == ["login.failed", "user.disabled", "login.succeeded"]


async def test_every_refusal_is_documented_in_the_openapi(identity: IdentityStack) -> None:
    async with identity.client() as client:
        spec = (await client.get("/openapi.json")).json()
    paths = spec["paths"]
    assert {"401", "422", "429"} <= set(paths["/api/v1/auth/login"]["post"]["responses"])
    assert {"401", "429"} <= set(paths["/api/v1/auth/pin-login"]["post"]["responses"])
    assert {"401", "403", "409"} <= set(paths["/api/v1/auth/users"]["post"]["responses"])
    login = spec["components"]["schemas"]["LoginIn"]
    assert login["properties"]["password"]["maxLength"] == 256
    assert login["additionalProperties"] is False


def test_staff_work_addresses_go_to_notify_and_customers_addresses_never(
    identity: IdentityStack,
) -> None:
    operator = identity.add_user(Role.OPERATOR, email="olga@potr.example")
    customer = identity.add_user(Role.CUSTOMER, email="carl@example.com")
    contacts = [p for n, p in identity.outbox() if n == "user.contact_changed"]
    assert contacts == [{"user_id": operator.id, "home_region": "au", "email": "olga@potr.example"}]
    assert all("email" not in p for n, p in identity.outbox() if n != "user.contact_changed")
    assert customer.id not in {p["user_id"] for p in contacts}
