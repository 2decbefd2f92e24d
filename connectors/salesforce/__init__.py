"""The Salesforce connector (simple-salesforce)."""
