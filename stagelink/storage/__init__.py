"""stagelink's storage layer: SQLAlchemy models, Alembic migrations, engines, encryption.

Typical use::

    from stagelink.storage import make_engine, session_factory, upgrade

    upgrade(database_url)                 # idempotent; also takes an Engine
    engine = make_engine(database_url)
    Session = session_factory(engine)
    with Session.begin() as session:
        ...

SQLite is the embedded default, PostgreSQL (psycopg 3) the shared store; both behave
the same through these functions and types.
"""

from stagelink.storage.credentials import (
    CredentialStore,
    StoredCredential,
    get_or_create_connection,
)
from stagelink.storage.crypto import TokenCipher, generate_key, load_or_create_key_file
from stagelink.storage.db import (
    current_revision,
    head_revision,
    make_engine,
    normalize_database_url,
    ping,
    redact_url,
    schema_differences,
    session_factory,
    upgrade,
)
from stagelink.storage.enums import (
    JobKind,
    JobStatus,
    OutboxState,
    TokenKind,
    UsageAction,
    UsageStatus,
)
from stagelink.storage.errors import (
    DecryptionError,
    EncryptionKeyError,
    SchemaVersionError,
    StorageError,
    StorageUnavailable,
)
from stagelink.storage.models import (
    ApiToken,
    Base,
    Checkpoint,
    Connection,
    ContentItem,
    Credential,
    CrmAccount,
    CrmOpportunity,
    CrmOwner,
    CrmPipeline,
    CrmStage,
    CrmStageHistory,
    JobRun,
    Lease,
    QuarantinedRecord,
    SyncCursor,
    UsageEvent,
    WritebackOutbox,
)
from stagelink.storage.types import utcnow

__all__ = [
    "ApiToken",
    "Base",
    "Checkpoint",
    "Connection",
    "ContentItem",
    "Credential",
    "CredentialStore",
    "CrmAccount",
    "CrmOpportunity",
    "CrmOwner",
    "CrmPipeline",
    "CrmStage",
    "CrmStageHistory",
    "DecryptionError",
    "EncryptionKeyError",
    "JobKind",
    "JobRun",
    "JobStatus",
    "Lease",
    "OutboxState",
    "QuarantinedRecord",
    "SchemaVersionError",
    "StorageError",
    "StorageUnavailable",
    "StoredCredential",
    "SyncCursor",
    "TokenCipher",
    "TokenKind",
    "UsageAction",
    "UsageEvent",
    "UsageStatus",
    "WritebackOutbox",
    "current_revision",
    "generate_key",
    "get_or_create_connection",
    "head_revision",
    "load_or_create_key_file",
    "make_engine",
    "normalize_database_url",
    "ping",
    "redact_url",
    "schema_differences",
    "session_factory",
    "upgrade",
    "utcnow",
]
