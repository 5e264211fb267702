"""Identity's settings, key files and hashing: what production refuses, what a hash holds."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from cloud.identity import (
    DEV_PIN_PEPPER,
    CredentialHasher,
    IdentityRelaySettings,
    IdentitySettings,
    KeyFileError,
    SmtpSettings,
    TokenSettings,
    load_signing_key,
    load_verifying_keys,
)
from cloud.keyfiles import is_demo_key, public_key_path, write_key_file
from cloud.portal import ApiSettings
from potr.cli import app

PEPPER = b"p" * 32


def test_production_verifies_with_a_public_key_it_is_given() -> None:
    with pytest.raises(ValidationError, match="POTR_IDENTITY_PUBLIC_KEY_FILE"):
        TokenSettings(env="production")
    with pytest.raises(ValidationError, match="POTR_IDENTITY_PUBLIC_KEY_FILE"):
        ApiSettings(env="production")
    assert ApiSettings(env="production", identity_public_key_file="/k.pub").api_port == 8000


def test_production_needs_a_signing_key_and_a_pepper_of_its_own(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="SIGNING_KEY_FILE"):
        IdentitySettings(env="production")
    with pytest.raises(ValidationError, match="PEPPER"):
        IdentitySettings(env="production", identity_signing_key_file="/k")
    weak = IdentitySettings(
        env="production", identity_signing_key_file="/k", identity_pin_pepper=DEV_PIN_PEPPER
    )
    with pytest.raises(ValueError, match="dev pepper"):
        weak.pin_pepper()
    (tmp_path / "pepper").write_bytes(b"s" * 48 + b"\n")
    good = IdentitySettings(
        env="production",
        identity_signing_key_file="/k",
        identity_pin_pepper_file=tmp_path / "pepper",
    )
    assert good.pin_pepper() == b"s" * 48
    assert IdentitySettings().pin_pepper() == DEV_PIN_PEPPER.encode()  # dev


def test_production_sends_reset_mail_over_tls_off_loopback() -> None:
    with pytest.raises(ValidationError, match="STARTTLS"):
        SmtpSettings(env="production", smtp_host="smtp.example.com")
    assert SmtpSettings(env="production", smtp_host="smtp.example.com", smtp_starttls=True)
    assert SmtpSettings(env="production", smtp_host="127.0.0.1").smtp_port == 25


def test_token_lifetime_and_hash_cost_have_floors_and_ceilings() -> None:
    with pytest.raises(ValidationError, match="identity_access_ttl_s"):
        IdentitySettings(identity_access_ttl_s=901)
    with pytest.raises(ValidationError, match="identity_argon2_memory_kib"):
        IdentitySettings(identity_argon2_memory_kib=8192)
    with pytest.raises(ValidationError, match="identity_argon2_time_cost"):
        IdentitySettings(identity_argon2_time_cost=1)


def test_both_halves_of_a_demo_pair_are_marked_and_refused_in_production(tmp_path: Path) -> None:
    key_file = tmp_path / "identity.pem"
    made = write_key_file(key_file, demo=True)
    public = public_key_path(key_file)
    assert is_demo_key(key_file.read_bytes())
    assert is_demo_key(public.read_bytes())
    assert load_signing_key(key_file, production=False).kid == made.kid
    assert load_verifying_keys(public, production=False).kids() == {made.kid}
    with pytest.raises(KeyFileError, match="demo key"):
        load_signing_key(key_file, production=True)
    with pytest.raises(KeyFileError, match="demo key"):
        load_verifying_keys(public, production=True)


def test_a_public_key_file_may_hold_the_old_and_the_new_key(tmp_path: Path) -> None:
    old, new = write_key_file(tmp_path / "old.pem"), write_key_file(tmp_path / "new.pem")
    both = tmp_path / "identity.pub"
    both.write_bytes(
        public_key_path(tmp_path / "old.pem").read_bytes()
        + public_key_path(tmp_path / "new.pem").read_bytes()
    )
    assert load_verifying_keys(both, production=True).kids() == {old.kid, new.kid}


def test_missing_or_wrong_key_files_are_refused_with_the_setting_named(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="POTR_IDENTITY_SIGNING_KEY_FILE is not set"):
        load_signing_key(None, production=False)
    with pytest.raises(KeyFileError, match="POTR_IDENTITY_PUBLIC_KEY_FILE is not set"):
        load_verifying_keys(None, production=False)
    (tmp_path / "empty.pub").write_text("nothing here")
    with pytest.raises(KeyFileError, match="no PEM public key"):
        load_verifying_keys(tmp_path / "empty.pub", production=False)
    write_key_file(tmp_path / "k.pem")
    with pytest.raises(KeyFileError, match="POTR_IDENTITY_PUBLIC_KEY_FILE"):
        load_verifying_keys(tmp_path / "k.pem", production=False)  # the private half


def test_hashes_are_argon2id_at_owasp_parameters_and_pins_need_the_pepper() -> None:
    hasher = CredentialHasher(PEPPER)
    stored = hasher.hash_password("correct horse battery staple")
    assert stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert hasher.verify_password(stored, "correct horse battery staple").ok
    assert not hasher.verify_password(stored, "Correct horse battery staple").ok
    assert not hasher.verify_password(None, "anything").ok  # no user: the dummy, and no
    pin = hasher.hash_pin("483920")
    assert hasher.verify_pin(pin, "483920").ok
    assert not CredentialHasher(b"q" * 32).verify_pin(pin, "483920").ok
    with pytest.raises(ValueError, match="OWASP"):
        CredentialHasher(PEPPER, memory_kib=4096)


def test_a_hash_made_at_lower_cost_asks_to_be_redone() -> None:
    stronger = CredentialHasher(PEPPER, memory_kib=24 * 1024)
    old = CredentialHasher(PEPPER).hash_password("correct horse battery staple")
    verified = stronger.verify_password(old, "correct horse battery staple")
    assert verified.ok
    assert verified.rehash


# -- where identity-api relays its events (ARCHITECTURE decision 152) ---------------------
AU_URL = "amqp://potr:au-secret-pw@au.example.net:5672/"
ALL_BUSES = (
    '{"au": "amqp://potr:a@au.example.net/", "us": "amqps://potr:u@us.example.net/",'
    ' "es": "amqp://potr:e@es.example.net:5672/"}'
)


def test_region_buses_are_read_as_json_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("POTR_IDENTITY_REGION_BUSES", ALL_BUSES)
    settings = IdentityRelaySettings(env="production")
    assert settings.buses() == {
        "au": "amqp://potr:a@au.example.net/",
        "us": "amqps://potr:u@us.example.net/",
        "es": "amqp://potr:e@es.example.net:5672/",
    }
    assert "potr:a@" not in repr(settings)  # secrets, never shown


def test_outside_production_no_bus_or_some_buses_are_allowed() -> None:
    assert IdentityRelaySettings().buses() == {}
    only_au = IdentityRelaySettings(env="test", identity_region_buses={"au": AU_URL})
    assert only_au.buses() == {"au": AU_URL}


def test_production_refuses_to_leave_a_region_without_its_bus_unless_disabled() -> None:
    with pytest.raises(ValidationError, match="no bus for au, us, es"):
        IdentityRelaySettings(env="production")
    with pytest.raises(ValidationError, match="no bus for us, es") as refused:
        IdentityRelaySettings(env="production", identity_region_buses={"au": AU_URL})
    assert "au-secret-pw" not in str(refused.value)
    disabled = IdentityRelaySettings(
        env="production", identity_region_buses={"au": AU_URL}, identity_relay_disabled=True
    )
    assert disabled.buses() == {}


def test_a_bus_that_is_not_amqp_or_a_region_that_does_not_exist_is_refused() -> None:
    with pytest.raises(ValidationError, match=r"\[es\] is not an amqp") as refused:
        IdentityRelaySettings(identity_region_buses={"es": "http://potr:es-secret@es.example/"})
    assert "es-secret" not in str(refused.value)
    with pytest.raises(ValidationError, match="identity_region_buses"):
        IdentityRelaySettings(identity_region_buses={"mars": AU_URL})


def test_region_buses_that_are_not_json_are_refused_without_echoing_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("POTR_IDENTITY_REGION_BUSES", "au=amqp://potr:au-secret-pw@au/")
    with pytest.raises(ValidationError, match="not JSON") as refused:
        IdentityRelaySettings()
    assert "au-secret-pw" not in str(refused.value)
    monkeypatch.setenv("POTR_IDENTITY_REGION_BUSES", " ")
    assert IdentityRelaySettings().buses() == {}


def test_identity_api_in_production_without_region_buses_exits_naming_the_setting(
    tmp_path: Path,
) -> None:
    env = {
        "POTR_ENV": "production",
        "POTR_IDENTITY_SIGNING_KEY_FILE": str(tmp_path / "identity.key"),
        "POTR_IDENTITY_PIN_PEPPER_FILE": str(tmp_path / "pepper"),
        "POTR_SMTP_STARTTLS": "true",
        "POTR_IDENTITY_REGION_BUSES": "",
    }
    result = CliRunner().invoke(app, ["identity-api"], env=env)
    assert result.exit_code == 2
    said = " ".join(result.output.split())  # the console wraps it
    assert "POTR_IDENTITY_REGION_BUSES has no bus for au, us, es" in said
