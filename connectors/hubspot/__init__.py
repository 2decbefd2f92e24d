"""The HubSpot connector (hubspot-api-client)."""
