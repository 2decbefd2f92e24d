"""All stagelink tables; importing this package registers them on ``Base.metadata``."""

from stagelink.storage.models.base import NAMING_CONVENTION, Base
from stagelink.storage.models.content import ContentItem
from stagelink.storage.models.core import Connection, Credential
from stagelink.storage.models.crm import (
    CrmAccount,
    CrmOpportunity,
    CrmOwner,
    CrmPipeline,
    CrmStage,
    CrmStageHistory,
    QuarantinedRecord,
)
from stagelink.storage.models.jobs import Checkpoint, JobRun, Lease, SyncCursor
from stagelink.storage.models.nudges import Nudge, NudgeCursor, NudgeTransition, PushSubscription
from stagelink.storage.models.usage import ApiToken, UsageEvent, WritebackOutbox

__all__ = [
    "NAMING_CONVENTION",
    "ApiToken",
    "Base",
    "Checkpoint",
    "Connection",
    "ContentItem",
    "Credential",
    "CrmAccount",
    "CrmOpportunity",
    "CrmOwner",
    "CrmPipeline",
    "CrmStage",
    "CrmStageHistory",
    "JobRun",
    "Lease",
    "Nudge",
    "NudgeCursor",
    "NudgeTransition",
    "PushSubscription",
    "QuarantinedRecord",
    "SyncCursor",
    "UsageEvent",
    "WritebackOutbox",
]
