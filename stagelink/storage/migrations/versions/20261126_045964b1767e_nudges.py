"""Stage-change nudges: detection cursors, the transition ledger, nudges, push subscriptions.

Revision ID: 045964b1767e
Revises: cee8b41480aa
Create Date: 2026-11-26 18:29:46.805682
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "045964b1767e"
down_revision: str | None = "cee8b41480aa"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of the model types (a migration must not change when models do).
KEY = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON_DOC = sa.JSON(none_as_null=True).with_variant(
    postgresql.JSONB(none_as_null=True), "postgresql"
)


def upgrade() -> None:
    op.create_table(
        "nudges",
        sa.Column("id", KEY, nullable=False),
        sa.Column("rep_email", sa.String(length=320), nullable=False),
        sa.Column(
            "kind",
            sa.Enum("single", "digest", name="nudge_kind", native_enum=False, length=20),
            nullable=False,
        ),
        sa.Column(
            "state",
            sa.Enum(
                "pending",
                "sending",
                "sent",
                "failed",
                name="nudge_state",
                native_enum=False,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column(
            "channels",
            JSON_DOC,
            nullable=False,
        ),
        sa.Column(
            "results",
            JSON_DOC,
            nullable=False,
        ),
        sa.Column("subject", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claimed_by", sa.String(length=200), nullable=True),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_nudges")),
    )
    with op.batch_alter_table("nudges", schema=None) as batch_op:
        batch_op.create_index("ix_nudges_due", ["state", "due_at"], unique=False)
        batch_op.create_index("ix_nudges_rep", ["rep_email", "created_at"], unique=False)

    op.create_table(
        "push_subscriptions",
        sa.Column("id", KEY, nullable=False),
        sa.Column("rep_email", sa.String(length=320), nullable=False),
        sa.Column("endpoint", sa.Text(), nullable=False),
        sa.Column("endpoint_hash", sa.String(length=64), nullable=False),
        sa.Column("p256dh", sa.String(length=200), nullable=False),
        sa.Column("auth", sa.String(length=100), nullable=False),
        sa.Column("user_agent", sa.Text(), nullable=True),
        sa.Column("connection_name", sa.String(length=100), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_push_subscriptions")),
        sa.UniqueConstraint("endpoint_hash", name=op.f("uq_push_subscriptions_endpoint_hash")),
    )
    with op.batch_alter_table("push_subscriptions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_push_subscriptions_rep_email"), ["rep_email"], unique=False
        )

    op.create_table(
        "nudge_cursors",
        sa.Column("id", KEY, nullable=False),
        sa.Column("connection_id", KEY, nullable=False),
        sa.Column("settled_id", KEY, nullable=False),
        sa.Column("seen_id", KEY, nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["connections.id"],
            name=op.f("fk_nudge_cursors_connection_id_connections"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_nudge_cursors")),
        sa.UniqueConstraint("connection_id", name=op.f("uq_nudge_cursors_connection_id")),
    )
    op.create_table(
        "nudge_transitions",
        sa.Column("id", KEY, nullable=False),
        sa.Column("connection_id", KEY, nullable=False),
        sa.Column("history_id", KEY, nullable=False),
        sa.Column("opportunity_crm_id", sa.String(length=255), nullable=False),
        sa.Column("to_stage", sa.String(length=255), nullable=False),
        sa.Column("canonical_stage", sa.String(length=100), nullable=True),
        sa.Column("previous_canonical_stage", sa.String(length=100), nullable=True),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("rep_email", sa.String(length=320), nullable=True),
        sa.Column(
            "status",
            sa.Enum(
                "waiting",
                "nudged",
                "skipped",
                name="nudge_transition_status",
                native_enum=False,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("nudge_id", KEY, nullable=True),
        sa.Column("detected_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["connections.id"],
            name=op.f("fk_nudge_transitions_connection_id_connections"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["history_id"],
            ["crm_stage_history.id"],
            name=op.f("fk_nudge_transitions_history_id_crm_stage_history"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["nudge_id"],
            ["nudges.id"],
            name=op.f("fk_nudge_transitions_nudge_id_nudges"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_nudge_transitions")),
        sa.UniqueConstraint("history_id", name=op.f("uq_nudge_transitions_history_id")),
    )
    with op.batch_alter_table("nudge_transitions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_nudge_transitions_nudge_id"), ["nudge_id"], unique=False
        )
        batch_op.create_index(
            "ix_nudge_transitions_opportunity",
            ["connection_id", "opportunity_crm_id"],
            unique=False,
        )
        batch_op.create_index("ix_nudge_transitions_waiting", ["status", "rep_email"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("nudge_transitions", schema=None) as batch_op:
        batch_op.drop_index("ix_nudge_transitions_waiting")
        batch_op.drop_index("ix_nudge_transitions_opportunity")
        batch_op.drop_index(batch_op.f("ix_nudge_transitions_nudge_id"))

    op.drop_table("nudge_transitions")
    op.drop_table("nudge_cursors")
    with op.batch_alter_table("push_subscriptions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_push_subscriptions_rep_email"))

    op.drop_table("push_subscriptions")
    with op.batch_alter_table("nudges", schema=None) as batch_op:
        batch_op.drop_index("ix_nudges_rep")
        batch_op.drop_index("ix_nudges_due")

    op.drop_table("nudges")
