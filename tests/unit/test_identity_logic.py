"""Identity's pure core: throttles, address keys, PINs, API keys, passwords, input bounds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from cloud.identity.logic import (
    ThrottlePolicy,
    ThrottleState,
    address_key,
    admit,
    after_success,
    fingerprint,
    identifier_key,
    is_weak_pin,
    new_api_key,
    new_opaque_token,
    new_pin,
    parse_api_key,
    password_problem,
)
from cloud.identity.models import LoginIn, PinLoginIn, UserIn

T0 = datetime(2030, 1, 1, tzinfo=UTC)
#: 3 attempts per 60 s; lock-outs of 100 s, doubling, at most 300 s.
POLICY = ThrottlePolicy(max_attempts=3, window_s=60, lockout_s=100, max_lockout_s=300)


def _at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def _attempts(state: ThrottleState | None, times: list[float]) -> ThrottleState | None:
    for t in times:
        admission = admit(state, _at(t), POLICY)
        assert admission.allowed, t
        state = admission.state
    return state


# -- throttles ------------------------------------------------------------------------------
def test_the_attempt_reaching_the_limit_is_verified_and_starts_the_lock_out() -> None:
    state = _attempts(None, [0, 1])
    third = admit(state, _at(2), POLICY)
    assert third.allowed
    assert third.locked_now
    assert third.state.locked_until == _at(102)
    fourth = admit(third.state, _at(3), POLICY)
    assert not fourth.allowed
    assert fourth.retry_after_s == 99
    assert fourth.state == third.state  # a refused attempt changes nothing


def test_attempts_spread_over_windows_never_lock() -> None:
    state = _attempts(None, [0, 1, 61, 62, 122, 123, 183])
    assert state is not None
    assert state.locked_until is None


def test_each_lock_out_in_a_row_lasts_twice_as_long_up_to_the_cap() -> None:
    state = _attempts(None, [0, 1, 2])
    assert state is not None
    assert state.locked_until == _at(102)
    state = _attempts(state, [102, 103, 104])  # lock-out ended: counted afresh
    assert state is not None
    assert state.locked_until == _at(104 + 200)
    state = _attempts(state, [304, 305, 306])
    assert state is not None
    assert state.locked_until == _at(306 + 300)
    assert state.lockouts == 3


def test_a_quiet_day_forgets_past_lock_outs() -> None:
    state = _attempts(None, [0, 1, 2])
    later = 2 + 86_400
    state = _attempts(state, [later, later + 1, later + 2])
    assert state is not None
    assert state.lockouts == 1
    assert state.locked_until == _at(later + 2 + 100)


def test_a_success_clears_the_identifier_and_refunds_the_address() -> None:
    state = _attempts(None, [0])
    last = admit(state, _at(1), POLICY)
    cleared = after_success(last.state, last, forget=True)
    assert (cleared.attempts, cleared.locked_until, cleared.lockouts) == (0, None, 0)
    refunded = after_success(last.state, last, forget=False)
    assert refunded.attempts == 1


def test_a_successful_attempt_that_reached_the_limit_lifts_its_own_lock_out() -> None:
    state = _attempts(None, [0, 1])
    third = admit(state, _at(2), POLICY)
    assert third.locked_now
    refunded = after_success(third.state, third, forget=False)
    assert refunded.locked_until is None
    assert refunded.attempts == 2
    assert admit(refunded, _at(3), POLICY).allowed


def test_a_policy_needs_sense() -> None:
    with pytest.raises(ValueError, match="max_lockout_s"):
        ThrottlePolicy(3, 60, 100, 50)
    with pytest.raises(ValueError, match="max_attempts"):
        ThrottlePolicy(0, 60, 100, 100)


# -- keys -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("host", "key"),
    [
        ("203.0.113.7", "203.0.113.7"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("[2001:db8:1:2::9]", "2001:db8:1:2::/64"),
        ("::ffff:198.51.100.1", "198.51.100.1"),
        ("testclient", "unknown"),
        (None, "unknown"),
        ("", "unknown"),
    ],
)
def test_address_keys_group_an_ipv6_host_by_its_64(host: str | None, key: str) -> None:
    assert address_key(host) == key


def test_identifier_keys_fold_case_and_hide_the_text() -> None:
    key = identifier_key("password", " Alice@Example.com ")
    assert key == identifier_key("password", "alice@example.com")
    assert key != identifier_key("pin", "alice@example.com")
    assert len(key) == 64
    assert "alice" not in key
    assert fingerprint("Hunter2-typed-as-a-login").startswith("sha256:")
    assert len(fingerprint("x")) == len("sha256:") + 16


# -- secrets --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("pin", "weak"),
    [
        ("000000", True),
        ("777777", True),
        ("123456", True),
        ("654321", True),
        ("890123", True),
        ("123123", True),
        ("483920", False),
        ("102938", False),
    ],
)
def test_weak_pins_are_recognised(pin: str, weak: bool) -> None:
    assert is_weak_pin(pin) is weak


def test_new_pins_are_six_digits_and_never_weak() -> None:
    pins = {new_pin() for _ in range(500)}
    assert all(len(p) == 6 and p.isdigit() and not is_weak_pin(p) for p in pins)
    assert len(pins) > 450


def test_api_keys_parse_back_to_their_id() -> None:
    key_id, key = new_api_key()
    assert parse_api_key(key) == key_id
    assert parse_api_key(key + "x") is None
    assert parse_api_key("pak_zz_" + "a" * 43) is None
    assert len(new_opaque_token("rt")) == 3 + 43


@pytest.mark.parametrize(
    ("password", "problem"),
    [
        ("short-pass", "at least 12"),
        ("x" * 257, "at most 256"),
        ("alice@example.com", "e-mail"),
        ("ALICE@example.com", "e-mail"),
        ("a long enough\x00one", "U+0000"),
        ("correct horse battery staple", None),
    ],
)
def test_password_rules_are_length_not_composition(password: str, problem: str | None) -> None:
    found = password_problem(password, "alice@example.com")
    assert (found is None) if problem is None else (problem in (found or ""))


# -- inputs ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "body",
    [
        {"email": "a@b.example", "password": "x\x00y"},
        {"email": "a\x00@b.example", "password": "x"},
        {"email": "no-at-sign", "password": "x"},
        {"email": "a@b.example", "password": ""},
        {"email": "a@b.example", "password": "x" * 257},
        {"email": "a@b.example", "password": "x", "role": "admin"},
        {"email": ("a" * 250) + "@b.example", "password": "x"},
    ],
)
def test_login_input_is_bounded(body: dict[str, str]) -> None:
    with pytest.raises(ValidationError):
        LoginIn.model_validate(body)


@pytest.mark.parametrize("pin", ["12345", "1234567", "12a456", "١٢٣٤٥٦"])
def test_a_pin_is_six_ascii_digits(pin: str) -> None:
    with pytest.raises(ValidationError):
        PinLoginIn(employee_no="E1", pin=pin)


def test_employee_numbers_are_upper_cased_and_broker_identities_are_technicians() -> None:
    user = UserIn(
        email="m@potr.example",
        display_name="Mo",
        role="mosie",
        home_region="au",
        employee_no="e-1001",
        broker_username="_tech/mo",
    )
    assert user.employee_no == "E-1001"
    with pytest.raises(ValidationError, match="technician"):
        UserIn.model_validate(user.model_dump() | {"broker_username": "_ingest/au-0"})
    with pytest.raises(ValidationError):
        UserIn.model_validate(user.model_dump() | {"display_name": "Mo\nroot"})
