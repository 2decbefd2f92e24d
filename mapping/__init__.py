"""Mapping: canonical stages, the content catalog, rules and recommendations."""
