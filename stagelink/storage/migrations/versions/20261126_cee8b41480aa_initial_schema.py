"""Initial schema: connections, CRM records, content, usage, outbox and jobs.

Revision ID: cee8b41480aa
Revises:
Create Date: 2026-11-26 14:50:43.786509
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "cee8b41480aa"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of the model types (a migration must not change when models do):
# 64-bit keys (SQLite only auto-increments INTEGER PRIMARY KEY), JSONB on PostgreSQL.
KEY = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON_DOC = sa.JSON(none_as_null=True).with_variant(
    postgresql.JSONB(none_as_null=True), "postgresql"
)


def upgrade() -> None:
    op.create_table(
        "api_tokens",
        sa.Column("id", KEY, nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column(
            "kind",
            sa.Enum("rep", "integration", name="token_kind", native_enum=False, length=20),
            nullable=False,
        ),
        sa.Column("rep_email", sa.String(length=320), nullable=True),
        sa.Column(
            "scopes",
            JSON_DOC,
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_api_tokens_token_hash")),
    )
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_api_tokens_name"), ["name"], unique=False)

    op.create_table(
        "connections",
        sa.Column("id", KEY, nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=50), nullable=False),
        sa.Column("config_fingerprint", sa.String(length=128), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_connections")),
        sa.UniqueConstraint("name", name=op.f("uq_connections_name")),
    )
    op.create_table(
        "content_items",
        sa.Column("id", KEY, nullable=False),
        sa.Column("content_id", sa.String(length=200), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("type", sa.String(length=50), nullable=False),
        sa.Column(
            "stages",
            JSON_DOC,
            nullable=False,
        ),
        sa.Column(
            "tags",
            JSON_DOC,
            nullable=False,
        ),
        sa.Column("mobile_ready", sa.Boolean(), nullable=False),
        sa.Column("owner", sa.Text(), nullable=True),
        sa.Column("valid_from", sa.DateTime(timezone=True), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("source_file", sa.Text(), nullable=True),
        sa.Column("loaded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("checksum", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_content_items")),
        sa.UniqueConstraint("content_id", name=op.f("uq_content_items_content_id")),
    )
    op.create_table(
        "leases",
        sa.Column("id", KEY, nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("holder", sa.String(length=200), nullable=False),
        sa.Column("acquired_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_leases")),
        sa.UniqueConstraint("name", name=op.f("uq_leases_name")),
    )
    op.create_table(
        "checkpoints",
        sa.Column("id", KEY, nullable=False),
        sa.Column("job_key", sa.String(length=255), nullable=False),
        sa.Column("connection_id", KEY, nullable=True),
        sa.Column(
            "state",
            JSON_DOC,
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["connections.id"],
            name=op.f("fk_checkpoints_connection_id_connections"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_checkpoints")),
        sa.UniqueConstraint("job_key", name=op.f("uq_checkpoints_job_key")),
    )
    with op.batch_alter_table("checkpoints", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_checkpoints_connection_id"), ["connection_id"], unique=False
        )

    op.create_table(
        "credentials",
        sa.Column("id", KEY, nullable=False),
        sa.Column("connection_id", KEY, nullable=False),
        sa.Column("kind", sa.String(length=50), nullable=False),
        sa.Column("ciphertext", sa.LargeBinary(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["connections.id"],
            name=op.f("fk_credentials_connection_id_connections"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_credentials")),
        sa.UniqueConstraint("connection_id", "kind", name="uq_credentials_kind"),
    )
    op.create_table(
        "crm_accounts",
        sa.Column("id", KEY, nullable=False),
        sa.Column("connection_id", KEY, nullable=False),
        sa.Column("crm_id", sa.String(length=255), nullable=False),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("industry", sa.Text(), nullable=True),
        sa.Column("country", sa.Text(), nullable=True),
        sa.Column("region", sa.Text(), nullable=True),
        sa.Column("type", sa.Text(), nullable=True),
        sa.Column("owner_crm_id", sa.String(length=255), nullable=True),
        sa.Column("currency", sa.String(length=16), nullable=True),
        sa.Column("annual_revenue", sa.Numeric(precision=18, scale=4), nullable=True),
        sa.Column(
            "custom_fields",
            JSON_DOC,
            nullable=False,
        ),
        sa.Column("crm_created_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("crm_modified_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "raw",
            JSON_DOC,
            nullable=False,
        ),
        sa.Column("synced_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["connections.id"],
            name=op.f("fk_crm_accounts_connection_id_connections"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_crm_accounts")),
        sa.UniqueConstraint("connection_id", "crm_id", name="uq_crm_accounts_crm_id"),
    )
    with op.batch_alter_table("crm_accounts", schema=None) as batch_op:
        batch_op.create_index(
            "ix_crm_accounts_modified", ["connection_id", "crm_modified_at"], unique=False
        )

    op.create_table(
        "crm_opportunities",
        sa.Column("id", KEY, nullable=False),
        sa.Column("connection_id", KEY, nullable=False),
        sa.Column("crm_id", sa.String(length=255), nullable=False),
        sa.Column("account_crm_id", sa.String(length=255), nullable=True),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("pipeline_crm_id", sa.String(length=255), nullable=True),
        sa.Column("stage_crm_id", sa.String(length=255), nullable=True),
        sa.Column("stage_label", sa.Text(), nullable=True),
        sa.Column("amount", sa.Numeric(precision=18, scale=4), nullable=True),
        sa.Column("currency", sa.String(length=16), nullable=True),
        sa.Column("close_date", sa.Date(), nullable=True),
        sa.Column("probability", sa.Double(), nullable=True),
        sa.Column("is_closed", sa.Boolean(), nullable=False),
        sa.Column("is_won", sa.Boolean(), nullable=False),
        sa.Column("type", sa.Text(), nullable=True),
        sa.Column("record_type", sa.Text(), nullable=True),
        sa.Column("owner_crm_id", sa.String(length=255), nullable=True),
        sa.Column(
            "custom_fields",
            JSON_DOC,
            nullable=False,
        ),
        sa.Column("crm_created_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("crm_modified_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("stage_entered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "raw",
            JSON_DOC,
            nullable=False,
        ),
        sa.Column("synced_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["connections.id"],
            name=op.f("fk_crm_opportunities_connection_id_connections"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_crm_opportunities")),
        sa.UniqueConstraint("connection_id", "crm_id", name="uq_crm_opportunities_crm_id"),
    )
    with op.batch_alter_table("crm_opportunities", schema=None) as batch_op:
        batch_op.create_index(
            "ix_crm_opportunities_account", ["connection_id", "account_crm_id"], unique=False
        )
        batch_op.create_index(
            "ix_crm_opportunities_modified", ["connection_id", "crm_modified_at"], unique=False
        )
        batch_op.create_index(
            "ix_crm_opportunities_owner", ["connection_id", "owner_crm_id"], unique=False
        )
        batch_op.create_index(
            "ix_crm_opportunities_stage", ["connection_id", "stage_crm_id"], unique=False
        )

    op.create_table(
        "crm_owners",
        sa.Column("id", KEY, nullable=False),
        sa.Column("connection_id", KEY, nullable=False),
        sa.Column("crm_id", sa.String(length=255), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column(
            "raw",
            JSON_DOC,
            nullable=False,
        ),
        sa.Column("synced_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["connections.id"],
            name=op.f("fk_crm_owners_connection_id_connections"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_crm_owners")),
        sa.UniqueConstraint("connection_id", "crm_id", name="uq_crm_owners_crm_id"),
    )
    with op.batch_alter_table("crm_owners", schema=None) as batch_op:
        batch_op.create_index("ix_crm_owners_email", ["connection_id", "email"], unique=False)

    op.create_table(
        "crm_pipelines",
        sa.Column("id", KEY, nullable=False),
        sa.Column("connection_id", KEY, nullable=False),
        sa.Column("crm_id", sa.String(length=255), nullable=False),
        sa.Column("label", sa.Text(), nullable=False),
        sa.Column("display_order", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column(
            "raw",
            JSON_DOC,
            nullable=False,
        ),
        sa.Column("synced_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["connections.id"],
            name=op.f("fk_crm_pipelines_connection_id_connections"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_crm_pipelines")),
        sa.UniqueConstraint("connection_id", "crm_id", name="uq_crm_pipelines_crm_id"),
    )
    op.create_table(
        "crm_stage_history",
        sa.Column("id", KEY, nullable=False),
        sa.Column("connection_id", KEY, nullable=False),
        sa.Column("opportunity_crm_id", sa.String(length=255), nullable=False),
        sa.Column("from_stage", sa.String(length=255), nullable=True),
        sa.Column("to_stage", sa.String(length=255), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(length=50), nullable=False),
        sa.Column("crm_id", sa.String(length=255), nullable=True),
        sa.Column("synced_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["connections.id"],
            name=op.f("fk_crm_stage_history_connection_id_connections"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_crm_stage_history")),
        sa.UniqueConstraint(
            "connection_id",
            "opportunity_crm_id",
            "to_stage",
            "changed_at",
            name="uq_crm_stage_history_transition",
        ),
    )
    op.create_table(
        "crm_stages",
        sa.Column("id", KEY, nullable=False),
        sa.Column("connection_id", KEY, nullable=False),
        sa.Column("crm_id", sa.String(length=255), nullable=False),
        sa.Column("pipeline_crm_id", sa.String(length=255), nullable=False),
        sa.Column("label", sa.Text(), nullable=False),
        sa.Column("display_order", sa.Integer(), nullable=False),
        sa.Column("probability", sa.Double(), nullable=True),
        sa.Column("is_closed", sa.Boolean(), nullable=False),
        sa.Column("is_won", sa.Boolean(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column(
            "raw",
            JSON_DOC,
            nullable=False,
        ),
        sa.Column("synced_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["connections.id"],
            name=op.f("fk_crm_stages_connection_id_connections"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_crm_stages")),
        sa.UniqueConstraint(
            "connection_id", "pipeline_crm_id", "crm_id", name="uq_crm_stages_crm_id"
        ),
    )
    op.create_table(
        "job_runs",
        sa.Column("id", KEY, nullable=False),
        sa.Column("connection_id", KEY, nullable=True),
        sa.Column(
            "kind",
            sa.Enum("sync", "backfill", "writeback", name="job_kind", native_enum=False, length=20),
            nullable=False,
        ),
        sa.Column(
            "status",
            sa.Enum(
                "running",
                "succeeded",
                "failed",
                "paused_budget",
                "interrupted",
                name="job_status",
                native_enum=False,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("node_id", sa.String(length=200), nullable=True),
        sa.Column(
            "params",
            JSON_DOC,
            nullable=False,
        ),
        sa.Column(
            "counts",
            JSON_DOC,
            nullable=False,
        ),
        sa.Column("error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["connections.id"],
            name=op.f("fk_job_runs_connection_id_connections"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_runs")),
    )
    with op.batch_alter_table("job_runs", schema=None) as batch_op:
        batch_op.create_index(
            "ix_job_runs_connection_kind", ["connection_id", "kind", "started_at"], unique=False
        )
        batch_op.create_index("ix_job_runs_status", ["status"], unique=False)

    op.create_table(
        "sync_cursors",
        sa.Column("id", KEY, nullable=False),
        sa.Column("connection_id", KEY, nullable=False),
        sa.Column("object_type", sa.String(length=50), nullable=False),
        sa.Column(
            "cursor",
            JSON_DOC,
            nullable=False,
        ),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["connections.id"],
            name=op.f("fk_sync_cursors_connection_id_connections"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sync_cursors")),
        sa.UniqueConstraint("connection_id", "object_type", name="uq_sync_cursors_object_type"),
    )
    op.create_table(
        "usage_events",
        sa.Column("id", KEY, nullable=False),
        sa.Column("client_event_id", sa.Uuid(), nullable=False),
        sa.Column("connection_id", KEY, nullable=False),
        sa.Column("rep_email", sa.String(length=320), nullable=False),
        sa.Column("opportunity_crm_id", sa.String(length=255), nullable=True),
        sa.Column("content_id", sa.String(length=200), nullable=False),
        sa.Column(
            "action",
            sa.Enum(
                "viewed",
                "shared",
                "presented",
                "downloaded",
                name="usage_action",
                native_enum=False,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("duration_seconds", sa.Integer(), nullable=True),
        sa.Column("channel", sa.String(length=50), nullable=True),
        sa.Column(
            "status",
            sa.Enum(
                "accepted",
                "held",
                "unassigned",
                "rejected",
                name="usage_status",
                native_enum=False,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("api_token_id", KEY, nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["api_token_id"],
            ["api_tokens.id"],
            name=op.f("fk_usage_events_api_token_id_api_tokens"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["connections.id"],
            name=op.f("fk_usage_events_connection_id_connections"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_usage_events")),
        sa.UniqueConstraint("client_event_id", name=op.f("uq_usage_events_client_event_id")),
    )
    with op.batch_alter_table("usage_events", schema=None) as batch_op:
        batch_op.create_index(
            "ix_usage_events_content", ["content_id", "occurred_at"], unique=False
        )
        batch_op.create_index(
            "ix_usage_events_opportunity", ["connection_id", "opportunity_crm_id"], unique=False
        )
        batch_op.create_index("ix_usage_events_status", ["connection_id", "status"], unique=False)

    op.create_table(
        "quarantined_records",
        sa.Column("id", KEY, nullable=False),
        sa.Column("connection_id", KEY, nullable=False),
        sa.Column("object_type", sa.String(length=50), nullable=False),
        sa.Column("crm_id", sa.String(length=255), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column(
            "raw",
            JSON_DOC,
            nullable=True,
        ),
        sa.Column("job_run_id", KEY, nullable=True),
        sa.Column("occurrences", sa.Integer(), nullable=False),
        sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["connections.id"],
            name=op.f("fk_quarantined_records_connection_id_connections"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["job_run_id"],
            ["job_runs.id"],
            name=op.f("fk_quarantined_records_job_run_id_job_runs"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_quarantined_records")),
        sa.UniqueConstraint(
            "connection_id", "object_type", "crm_id", name="uq_quarantined_records_record"
        ),
    )
    with op.batch_alter_table("quarantined_records", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_quarantined_records_job_run_id"), ["job_run_id"], unique=False
        )

    op.create_table(
        "writeback_outbox",
        sa.Column("id", KEY, nullable=False),
        sa.Column("usage_event_id", KEY, nullable=False),
        sa.Column("connection_id", KEY, nullable=False),
        sa.Column(
            "state",
            sa.Enum(
                "pending",
                "in_flight",
                "written",
                "dead",
                name="outbox_state",
                native_enum=False,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("batch_id", sa.String(length=64), nullable=True),
        sa.Column("claimed_by", sa.String(length=200), nullable=True),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("crm_object_type", sa.String(length=50), nullable=True),
        sa.Column("crm_activity_id", sa.String(length=255), nullable=True),
        sa.Column("external_marker", sa.String(length=100), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("written_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["connections.id"],
            name=op.f("fk_writeback_outbox_connection_id_connections"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["usage_event_id"],
            ["usage_events.id"],
            name=op.f("fk_writeback_outbox_usage_event_id_usage_events"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_writeback_outbox")),
        sa.UniqueConstraint("usage_event_id", name=op.f("uq_writeback_outbox_usage_event_id")),
    )
    with op.batch_alter_table("writeback_outbox", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_writeback_outbox_batch_id"), ["batch_id"], unique=False
        )
        batch_op.create_index(
            "ix_writeback_outbox_due", ["connection_id", "state", "next_attempt_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("writeback_outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_writeback_outbox_due")
        batch_op.drop_index(batch_op.f("ix_writeback_outbox_batch_id"))

    op.drop_table("writeback_outbox")
    with op.batch_alter_table("quarantined_records", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_quarantined_records_job_run_id"))

    op.drop_table("quarantined_records")
    with op.batch_alter_table("usage_events", schema=None) as batch_op:
        batch_op.drop_index("ix_usage_events_status")
        batch_op.drop_index("ix_usage_events_opportunity")
        batch_op.drop_index("ix_usage_events_content")

    op.drop_table("usage_events")
    op.drop_table("sync_cursors")
    with op.batch_alter_table("job_runs", schema=None) as batch_op:
        batch_op.drop_index("ix_job_runs_status")
        batch_op.drop_index("ix_job_runs_connection_kind")

    op.drop_table("job_runs")
    op.drop_table("crm_stages")
    op.drop_table("crm_stage_history")
    op.drop_table("crm_pipelines")
    with op.batch_alter_table("crm_owners", schema=None) as batch_op:
        batch_op.drop_index("ix_crm_owners_email")

    op.drop_table("crm_owners")
    with op.batch_alter_table("crm_opportunities", schema=None) as batch_op:
        batch_op.drop_index("ix_crm_opportunities_stage")
        batch_op.drop_index("ix_crm_opportunities_owner")
        batch_op.drop_index("ix_crm_opportunities_modified")
        batch_op.drop_index("ix_crm_opportunities_account")

    op.drop_table("crm_opportunities")
    with op.batch_alter_table("crm_accounts", schema=None) as batch_op:
        batch_op.drop_index("ix_crm_accounts_modified")

    op.drop_table("crm_accounts")
    op.drop_table("credentials")
    with op.batch_alter_table("checkpoints", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_checkpoints_connection_id"))

    op.drop_table("checkpoints")
    op.drop_table("leases")
    op.drop_table("content_items")
    op.drop_table("connections")
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_api_tokens_name"))

    op.drop_table("api_tokens")
