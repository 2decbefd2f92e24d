"""Tests of the Salesforce connector against the Salesforce sandbox over HTTPS."""
