"""Alembic migrations for stagelink's schema (run via :func:`stagelink.storage.upgrade`)."""
