"""Tests of the connector packages."""
