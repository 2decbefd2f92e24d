"""Tests of the HubSpot connector's client layer and probe."""
