"""Sandbox CRMs: local, API-faithful Salesforce and HubSpot emulators with seeded data.

The sandbox imports nothing else of stagelink, so the emulators cannot share a
misunderstanding with the connectors that talk to them.
"""
