"""One exception root for stagelink, grouped by what the caller should do.

::

    StagelinkError
    ├── ConfigurationError   fix the configuration or credentials, then run again
    ├── TransientError       retry later (rate limits, 5xx, dropped connections)
    ├── RecordError          skip this record and quarantine it with the reason
    └── FatalError           stop: a bug or a state a person must look at
"""

from __future__ import annotations


class StagelinkError(Exception):
    """Root of every error stagelink raises on purpose."""


class ConfigurationError(StagelinkError):
    """The configuration, credentials or environment are wrong; a person must fix them."""


class TransientError(StagelinkError):
    """A temporary failure; the same call may succeed later."""


class RecordError(StagelinkError):
    """One record is bad; quarantine it and go on with the rest."""


class FatalError(StagelinkError):
    """An unexpected state; stop the job and report it."""
