import copy
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contracts.signing import (
    SignatureError,
    SigningKey,
    TrustedKeys,
    canonical_bytes,
    public_key_from_pem,
    sign_document,
)

DOC = {
    "v": 1,
    "gateway_id": "gw-0001",
    "version": 3,
    "devices": {"SN1": {"export_limit_w": 5000}},
    "issued_by": "ops@potr",
    "not_after": "2026-12-01T00:00:00.000Z",
}


def test_canonical_form_sorts_keys_and_drops_sig() -> None:
    assert canonical_bytes({"b": 1.0, "a": "é", "sig": "x"}) == '{"a":"é","b":1}'.encode()


def test_signed_document_verifies_after_a_json_round_trip() -> None:
    key = SigningKey.generate()
    signed = sign_document(DOC, key)
    trusted = TrustedKeys([key.public_key])
    received = json.loads(json.dumps(signed, indent=3))  # whitespace and order change
    trusted.verify(received)
    assert signed["kid"] == key.kid


@pytest.mark.parametrize(
    "tamper",
    [
        lambda d: d.__setitem__("version", 4),
        lambda d: d["devices"]["SN1"].__setitem__("export_limit_w", 50000),
        lambda d: d.__setitem__("gateway_id", "gw-0002"),
        lambda d: d.__setitem__("sig", d["sig"][:-2] + ("AA" if d["sig"][-2:] != "AA" else "BB")),
        lambda d: d.pop("sig"),
        lambda d: d.__setitem__("sig", "***"),
        lambda d: d.__setitem__("kid", "0000000000000000"),
    ],
)
def test_tampered_documents_fail_verification(tamper: object) -> None:
    key = SigningKey.generate()
    doc = copy.deepcopy(sign_document(DOC, key))
    tamper(doc)  # type: ignore[operator]
    with pytest.raises(SignatureError):
        TrustedKeys([key.public_key]).verify(doc)


def test_key_rotation_add_new_switch_then_retire_old() -> None:
    old, new = SigningKey.generate(), SigningKey.generate()
    trusted = TrustedKeys([old.public_key])
    by_old = sign_document(DOC, old)
    trusted.verify(by_old)
    with pytest.raises(SignatureError, match="not trusted"):
        trusted.verify(sign_document(DOC, new))
    trusted.add(new.public_key)  # agents trust both
    trusted.verify(by_old)
    trusted.verify(sign_document(DOC, new))  # cloud switched signing
    trusted.retire(old.kid)
    with pytest.raises(SignatureError, match="not trusted"):
        trusted.verify(by_old)
    trusted.verify(sign_document(DOC, new))


def test_keys_survive_pem_round_trip() -> None:
    key = SigningKey.generate()
    again = SigningKey.from_pem(key.private_pem())
    assert again.kid == key.kid
    trusted = TrustedKeys.from_pems([key.public_pem()])
    trusted.verify(sign_document(DOC, again))


def test_nan_cannot_be_signed() -> None:
    with pytest.raises(SignatureError):
        sign_document({"x": float("nan")}, SigningKey.generate())


@given(
    st.dictionaries(
        st.text(min_size=1, max_size=8),
        st.one_of(st.integers(-(10**9), 10**9), st.text(max_size=8), st.booleans()),
        max_size=6,
    )
)
def test_any_json_document_signs_and_verifies(doc: dict[str, object]) -> None:
    key = SigningKey.generate()
    TrustedKeys([key.public_key]).verify(sign_document(doc, key))


def test_a_public_pem_reads_as_the_raw_key_cryptography_reports() -> None:
    from cryptography.hazmat.primitives import serialization

    for _ in range(20):
        key = SigningKey.generate()
        expected = serialization.load_pem_public_key(key.public_pem()).public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        assert public_key_from_pem(key.public_pem()) == expected
        assert TrustedKeys.from_pems([key.public_pem()]).kids() == {key.kid}


def test_a_public_pem_of_another_algorithm_or_text_is_refused() -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    ec_pem = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    with pytest.raises(SignatureError, match="not an Ed25519 public key"):
        public_key_from_pem(ec_pem)
    with pytest.raises(SignatureError, match="exactly one PEM public key"):
        public_key_from_pem(SigningKey.generate().private_pem())
    two = SigningKey.generate().public_pem() + SigningKey.generate().public_pem()
    with pytest.raises(SignatureError, match="exactly one PEM public key"):
        public_key_from_pem(two)
    with pytest.raises(SignatureError, match="not valid PEM"):
        public_key_from_pem(b"-----BEGIN PUBLIC KEY-----\n@@@@\n-----END PUBLIC KEY-----\n")


def test_a_signature_of_the_wrong_length_is_refused_not_crashed() -> None:
    key = SigningKey.generate()
    signed = sign_document(DOC, key)
    signed["sig"] = signed["sig"][:-4]
    with pytest.raises(SignatureError, match="does not match"):
        TrustedKeys([key.public_key]).verify(signed)


def test_verifying_does_not_load_cryptography() -> None:
    import subprocess
    import sys

    code = (
        "import sys; from contracts.signing import TrustedKeys;"
        "TrustedKeys([bytes(32)]);"
        "print('cryptography' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_text_around_the_pem_block_is_ignored_as_rfc_7468_asks() -> None:
    key = SigningKey.generate()
    raw = key.public_key
    framed = [
        b"# the cloud's key, rotated 2026-12\n" + key.public_pem(),
        key.public_pem() + b"\nretire after 2027-06\n",
        b"\xef\xbb\xbf" + key.public_pem(),  # a byte-order mark from a Windows editor
        key.public_pem().replace(b"\n", b"\r\n"),
    ]
    for pem in framed:
        assert public_key_from_pem(pem) == raw
