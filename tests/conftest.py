"""Shared pytest configuration. Fixture plugins live in ``tests/fixtures/``."""

# -- database fixtures (storage): database_url, engine, session, ... --------------------
pytest_plugins = ["tests.fixtures.database"]
