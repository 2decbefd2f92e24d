"""The sync engine: stores what connectors read, with cursors, job runs and quarantine.

::

    from stagelink.sync import SyncOptions, open_storage, run_job

    with open_storage(config) as storage:
        outcome = run_job(config, storage, "acme-salesforce", SyncOptions())
"""

from stagelink.sync.engine import (
    JobAlreadyRunning,
    JobOutcome,
    Progress,
    SyncEngine,
    SyncOptions,
    default_node_id,
)
from stagelink.sync.runner import Storage, open_connector, open_storage, run_job
from stagelink.sync.store import Counts, RecordWriter

__all__ = [
    "Counts",
    "JobAlreadyRunning",
    "JobOutcome",
    "Progress",
    "RecordWriter",
    "Storage",
    "SyncEngine",
    "SyncOptions",
    "default_node_id",
    "open_connector",
    "open_storage",
    "run_job",
]
