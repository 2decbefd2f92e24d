"""Encryption at rest for CRM tokens: Fernet with key rotation.

:class:`TokenCipher` encrypts with its first key and decrypts with any of them, so a
rotation is: put the new key first, keep the old one after it, run
:meth:`stagelink.storage.CredentialStore.reencrypt_all`, then drop the old key.

When no key is configured, the embedded default keeps one in a 0600 key file created by
:func:`load_or_create_key_file`. Keys never appear in messages or reprs.
"""

from __future__ import annotations

import binascii
import os
import re
import stat
import tempfile
from base64 import b64decode
from collections.abc import Sequence
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from stagelink.storage.errors import DecryptionError, EncryptionKeyError

_FERNET_KEY_HELP = (
    "expected a Fernet key: 32 random bytes, url-safe base64-encoded (44 characters); "
    'generate one with: python -c "from cryptography.fernet import Fernet; '
    'print(Fernet.generate_key().decode())"'
)


def generate_key() -> bytes:
    """A new random Fernet key (url-safe base64, 44 bytes)."""
    return Fernet.generate_key()


def _validate_key(key: bytes | str, where: str) -> bytes:
    raw = key.encode("ascii", "replace") if isinstance(key, str) else key
    raw = raw.strip()
    if not raw:
        raise EncryptionKeyError(f"{where} is empty; {_FERNET_KEY_HELP}")
    try:
        decoded = b64decode(raw, altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        raise EncryptionKeyError(
            f"{where} is not url-safe base64 ({len(raw)} characters); {_FERNET_KEY_HELP}"
        ) from None
    if len(decoded) != 32:
        raise EncryptionKeyError(
            f"{where} decodes to {len(decoded)} bytes, not 32; {_FERNET_KEY_HELP}"
        )
    return raw


class TokenCipher:
    """Encrypts secrets with the first key; decrypts with any key (key rotation).

    Raises :class:`EncryptionKeyError` for a malformed key, naming which one (by
    position, never by value).
    """

    def __init__(self, keys: Sequence[bytes | str]) -> None:
        if isinstance(keys, str | bytes):
            raise TypeError("TokenCipher takes a sequence of keys; use TokenCipher([key])")
        if not keys:
            raise EncryptionKeyError(f"no encryption key configured; {_FERNET_KEY_HELP}")
        validated = [
            _validate_key(key, f"encryption key #{number}")
            for number, key in enumerate(keys, start=1)
        ]
        self._fernet = MultiFernet([Fernet(key) for key in validated])

    @classmethod
    def from_string(cls, keys: str) -> TokenCipher:
        """Keys separated by commas or whitespace, newest first (for one env variable)."""
        return cls([key for key in re.split(r"[\s,]+", keys) if key])

    def encrypt(self, plaintext: str) -> bytes:
        """Encrypt ``plaintext`` with the primary (first) key."""
        return self._fernet.encrypt(plaintext.encode("utf-8"))

    def decrypt(self, ciphertext: bytes) -> str:
        """Decrypt with whichever configured key fits.

        Raises :class:`DecryptionError` if none does (the key was rotated away, or the
        data was altered).
        """
        try:
            return self._fernet.decrypt(ciphertext).decode("utf-8")
        except InvalidToken:
            raise DecryptionError(
                "a stored secret cannot be decrypted with any configured encryption key "
                "(was the key that encrypted it removed or changed?)"
            ) from None

    def rotate(self, ciphertext: bytes) -> bytes:
        """Re-encrypt ``ciphertext`` with the primary key (keeps its original timestamp)."""
        try:
            return self._fernet.rotate(ciphertext)
        except InvalidToken:
            raise DecryptionError(
                "a stored secret cannot be decrypted with any configured encryption key, "
                "so it cannot be re-encrypted"
            ) from None

    def __repr__(self) -> str:
        return "TokenCipher(<keys hidden>)"


def load_or_create_key_file(path: str | os.PathLike[str]) -> bytes:
    """Read the Fernet key in ``path``, creating the file (mode 0600) if it is missing.

    Creation is atomic (write a temporary file, then hard-link it into place), so two
    processes starting at once end up with the same key. Raises
    :class:`EncryptionKeyError` naming the file if it cannot be read or holds no valid
    key, or if it is readable by other users.
    """
    key_path = Path(path).expanduser()
    if not key_path.exists():
        _create_key_file(key_path)
    try:
        mode = key_path.stat().st_mode
        content = key_path.read_bytes()
    except OSError as exc:
        raise EncryptionKeyError(
            f"cannot read encryption key file {key_path}: {exc.strerror or exc}"
        ) from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise EncryptionKeyError(
            f"encryption key file {key_path} is accessible by other users "
            f"(mode {stat.filemode(mode)}); run: chmod 600 {key_path}"
        )
    return _validate_key(content, f"encryption key file {key_path}")


def _create_key_file(key_path: Path) -> None:
    try:
        key_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, temp_name = tempfile.mkstemp(prefix=".key-", dir=key_path.parent)
    except OSError as exc:
        raise EncryptionKeyError(
            f"cannot create encryption key file {key_path}: {exc.strerror or exc}"
        ) from None
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(generate_key() + b"\n")
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(temp_name, key_path)
        except FileExistsError:
            pass  # another process created it first; use theirs
        except OSError as exc:
            raise EncryptionKeyError(
                f"cannot create encryption key file {key_path}: {exc.strerror or exc}"
            ) from None
    finally:
        os.unlink(temp_name)
