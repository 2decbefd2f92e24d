"""Scheduling of sync and writeback jobs per connection (APScheduler, leases on PostgreSQL).

Imports connectors and the application's engines, never the web layer or the CLI.
"""
