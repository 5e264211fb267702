"""The cloud's signing key files: demo keys are recognisable and refused in production."""

from __future__ import annotations

from pathlib import Path

import pytest

from cloud.config.keys import (
    SigningKeyError,
    is_demo_key,
    load_signing_key,
    public_key_path,
    write_key_file,
)
from contracts.signing import TrustedKeys, sign_document


def test_a_demo_key_loads_and_is_recognised(tmp_path: Path) -> None:
    made = write_key_file(tmp_path / "demo.pem", demo=True)
    assert is_demo_key((tmp_path / "demo.pem").read_bytes())
    assert load_signing_key(tmp_path / "demo.pem", production=False).kid == made.kid


def test_production_refuses_the_demo_key(tmp_path: Path) -> None:
    write_key_file(tmp_path / "demo.pem", demo=True)
    with pytest.raises(SigningKeyError, match="demo key"):
        load_signing_key(tmp_path / "demo.pem", production=True)


def test_production_refuses_no_key() -> None:
    with pytest.raises(SigningKeyError, match="POTR_SIGNING_KEY_FILE is not set"):
        load_signing_key(None, production=True)


def test_a_real_key_is_accepted_in_production_and_its_public_half_verifies(
    tmp_path: Path,
) -> None:
    key_file = tmp_path / "cloud.pem"
    made = write_key_file(key_file)
    assert not is_demo_key(key_file.read_bytes())
    assert key_file.stat().st_mode & 0o777 == 0o600
    loaded = load_signing_key(key_file, production=True)
    trusted = TrustedKeys.from_pems([public_key_path(key_file).read_bytes()])
    trusted.verify(sign_document({"v": 1, "x": 1}, loaded))
    assert trusted.kids() == {made.kid}


def test_an_existing_key_file_is_never_overwritten(tmp_path: Path) -> None:
    write_key_file(tmp_path / "k.pem")
    with pytest.raises(SigningKeyError, match="exists"):
        write_key_file(tmp_path / "k.pem")


def test_a_file_that_is_not_an_ed25519_key_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pem"
    bad.write_bytes(b"not a key")
    with pytest.raises(SigningKeyError):
        load_signing_key(bad, production=False)
