"""Entry point of the built-in HubSpot connector."""

from connectors.core.registry import ConnectorPlugin
from connectors.hubspot.config import HubSpotConnectionConfig
from connectors.hubspot.connector import open_connector
from connectors.hubspot.probe import probe

PLUGIN = ConnectorPlugin(
    kind="hubspot",
    description="HubSpot through hubspot-api-client (CRM v3 objects, search, associations v4)",
    config_model=HubSpotConnectionConfig,
    probe=probe,
    open=open_connector,
)
