"""Migration revisions; Alembic loads every module here except this one."""
