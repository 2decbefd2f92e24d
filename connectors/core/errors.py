"""One exception root for stagelink, grouped by what the caller should do.

::

    StagelinkError
    ├── ConfigurationError   fix the configuration or credentials, then run again
    ├── TransientError       retry later (rate limits, 5xx, dropped connections)
    │   └── BudgetExhaustedError   the API budget is spent: stop at a checkpoint, resume later
    ├── RecordError          skip this record and quarantine it with the reason
    └── FatalError           stop: a bug or a state a person must look at
"""

from __future__ import annotations

from datetime import timedelta


class StagelinkError(Exception):
    """Root of every error stagelink raises on purpose."""


class ConfigurationError(StagelinkError):
    """The configuration, credentials or environment are wrong; a person must fix them."""


class TransientError(StagelinkError):
    """A temporary failure; the same call may succeed later."""


class BudgetExhaustedError(TransientError):
    """The CRM's API allowance (or stagelink's configured share of it) is used up.

    Jobs stop at their last checkpoint with status ``paused_budget`` and resume on the next
    run; a retry within the same call cannot help. ``retry_after`` says when it may pass.
    """

    retry_after: timedelta | None = None


class RecordError(StagelinkError):
    """One record is bad; quarantine it and go on with the rest."""


class FatalError(StagelinkError):
    """An unexpected state; stop the job and report it."""
