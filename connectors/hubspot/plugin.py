"""Entry point of the built-in HubSpot connector."""

from connectors.core.registry import ConnectorPlugin
from connectors.hubspot.config import HubSpotConnectionConfig

PLUGIN = ConnectorPlugin(
    kind="hubspot",
    description="HubSpot through hubspot-api-client (CRM v3 objects, search, associations v4)",
    config_model=HubSpotConnectionConfig,
)
