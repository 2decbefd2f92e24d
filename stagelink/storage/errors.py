"""Errors raised by the storage layer, grouped by what the caller should do.

::

    StorageError                 root; the CLI prints ``str(error)`` and exits 2
    ├── StorageUnavailable       the database cannot be reached or opened: fix the URL or
    │                            start the server (message names the redacted URL + reason)
    ├── SchemaVersionError       the database was migrated by a newer stagelink
    └── EncryptionKeyError       an encryption key is malformed, unreadable or does not
        └── DecryptionError      fit the stored ciphertext (rotated away, or tampered)

Every message is one line and never contains a password or a key.
"""

from __future__ import annotations

from connectors.core.errors import ConfigurationError


class StorageError(ConfigurationError):
    """Root of the storage layer's deliberate errors; ``str()`` is a user-ready line."""


class StorageUnavailable(StorageError):
    """The database URL is invalid, or the database cannot be reached or opened."""


class SchemaVersionError(StorageError):
    """The database schema is at a revision this version of stagelink does not know."""


class EncryptionKeyError(StorageError):
    """An encryption key (or key file) is missing, malformed or unreadable."""


class DecryptionError(EncryptionKeyError):
    """Stored ciphertext cannot be decrypted with any configured key."""
