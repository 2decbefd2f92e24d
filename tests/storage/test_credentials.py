"""CRM tokens are encrypted at rest, survive key rotation, and bad keys are explained."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from stagelink.storage import (
    CredentialStore,
    DecryptionError,
    EncryptionKeyError,
    TokenCipher,
    generate_key,
    get_or_create_connection,
    load_or_create_key_file,
    session_factory,
)

SECRET = "00Dxx0000001gPL!AQ4AQFakeSessionToken.with.dots_and_ünïcode"


def _raw_ciphertexts(session: Session) -> list[bytes]:
    rows = session.execute(text("SELECT ciphertext FROM credentials")).scalars()
    return [bytes(row) for row in rows]


def test_tokens_are_encrypted_at_rest(engine: Engine) -> None:
    cipher = TokenCipher([generate_key()])
    expires = datetime.now(UTC) + timedelta(hours=2)
    with session_factory(engine).begin() as session:
        acme = get_or_create_connection(session, "acme", "salesforce")
        CredentialStore(session, cipher).put(acme, "access_token", SECRET, expires_at=expires)

    with session_factory(engine)() as session:
        stored = _raw_ciphertexts(session)
        assert len(stored) == 1
        assert SECRET.encode() not in stored[0]
        assert b"FakeSessionToken" not in stored[0]
        # And nowhere else in the row either.
        row = session.execute(text("SELECT * FROM credentials")).one()
        assert not any(SECRET in str(value) for value in row)

        acme = get_or_create_connection(session, "acme", "salesforce")
        loaded = CredentialStore(session, cipher).load(acme, "access_token")
        assert loaded is not None
        assert loaded.value == SECRET
        assert loaded.expires_at == expires
        assert not loaded.is_expired()
        assert loaded.is_expired(leeway_seconds=3 * 3600)
        assert SECRET not in repr(loaded)


def test_put_replaces_and_delete_forgets(session: Session) -> None:
    store = CredentialStore(session, TokenCipher([generate_key()]))
    acme = get_or_create_connection(session, "acme", "hubspot")
    assert store.get(acme, "refresh_token") is None
    store.put(acme, "refresh_token", "first")
    store.put(acme, "refresh_token", "second")
    session.commit()
    assert store.get(acme, "refresh_token") == "second"
    assert session.execute(text("SELECT count(*) FROM credentials")).scalar_one() == 1
    assert store.delete(acme, "refresh_token") is True
    assert store.get(acme, "refresh_token") is None
    assert store.delete(acme, "refresh_token") is False


def test_key_rotation(session: Session) -> None:
    old_key, new_key = generate_key(), generate_key()
    acme = get_or_create_connection(session, "acme", "salesforce")
    CredentialStore(session, TokenCipher([old_key])).put(acme, "access_token", SECRET)
    session.commit()
    before = _raw_ciphertexts(session)

    # The new key alone cannot read what the old key wrote...
    with pytest.raises(DecryptionError, match="cannot be decrypted"):
        CredentialStore(session, TokenCipher([new_key])).get(acme, "access_token")

    # ...new key first, old key kept: old secrets read, new ones use the new key.
    rotating = CredentialStore(session, TokenCipher([new_key, old_key]))
    assert rotating.get(acme, "access_token") == SECRET
    assert rotating.reencrypt_all() == 1
    session.commit()
    assert _raw_ciphertexts(session) != before

    # After re-encryption the old key can be dropped.
    assert CredentialStore(session, TokenCipher([new_key])).get(acme, "access_token") == SECRET


def test_connection_names_keep_their_crm_kind(session: Session) -> None:
    first = get_or_create_connection(session, "acme", "salesforce", config_fingerprint="a")
    again = get_or_create_connection(session, "acme", "salesforce", config_fingerprint="b")
    assert again.id == first.id
    assert again.config_fingerprint == "b"
    with pytest.raises(ValueError, match="stored as a salesforce connection, not hubspot"):
        get_or_create_connection(session, "acme", "hubspot")


@pytest.mark.parametrize(
    ("key", "problem"),
    [
        ("", "encryption key #2 is empty"),
        ("not-a-key!", "encryption key #2 is not url-safe base64"),
        ("c2hvcnQ=", "encryption key #2 decodes to 5 bytes, not 32"),
        ("abc", "encryption key #2 is not url-safe base64"),
    ],
)
def test_bad_keys_are_named_without_being_shown(key: str, problem: str) -> None:
    with pytest.raises(EncryptionKeyError) as caught:
        TokenCipher([generate_key(), key])
    message = str(caught.value)
    assert problem in message
    assert "Fernet.generate_key()" in message  # says how to make a good one
    if key:
        assert key not in message


def test_keys_from_one_environment_variable() -> None:
    new, old = generate_key().decode(), generate_key().decode()
    token = TokenCipher([old]).encrypt("x")
    assert TokenCipher.from_string(f" {new},\n{old} ").decrypt(token) == "x"
    assert "hidden" in repr(TokenCipher.from_string(new))
    with pytest.raises(EncryptionKeyError, match="no encryption key configured"):
        TokenCipher.from_string(" , ")


def test_key_file_is_created_private_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "state" / "secret.key"
    key = load_or_create_key_file(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_key_file(path) == key
    assert TokenCipher([key]).decrypt(TokenCipher([key]).encrypt("x")) == "x"
    assert list(path.parent.iterdir()) == [path]  # no temporary files left behind


def test_processes_creating_the_key_file_at_once_agree(tmp_path: Path) -> None:
    path = tmp_path / "secret.key"
    script = (
        "import sys; from stagelink.storage import load_or_create_key_file; "
        "sys.stdout.write(load_or_create_key_file(sys.argv[1]).decode())"
    )
    processes = [
        subprocess.Popen([sys.executable, "-c", script, str(path)], stdout=subprocess.PIPE)
        for _ in range(4)
    ]
    keys = {process.communicate(timeout=60)[0] for process in processes}
    assert all(process.returncode == 0 for process in processes)
    assert keys == {path.read_bytes().strip()}


def test_key_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "secret.key"
    path.write_bytes(generate_key())
    os.chmod(path, 0o644)
    with pytest.raises(EncryptionKeyError, match="accessible by other users"):
        load_or_create_key_file(path)


def test_key_file_with_garbage_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "secret.key"
    path.write_text("hunter2\n")
    os.chmod(path, 0o600)
    with pytest.raises(EncryptionKeyError) as caught:
        load_or_create_key_file(path)
    assert f"encryption key file {path}" in str(caught.value)
    assert "hunter2" not in str(caught.value)
