"""Entry point of the built-in Salesforce connector."""

from connectors.core.registry import ConnectorPlugin
from connectors.salesforce.config import SalesforceConnectionConfig
from connectors.salesforce.connector import open_connector
from connectors.salesforce.probe import probe

PLUGIN = ConnectorPlugin(
    kind="salesforce",
    description="Salesforce through simple-salesforce (REST, Bulk API 2.0, sObject Collections)",
    config_model=SalesforceConnectionConfig,
    probe=probe,
    open=open_connector,
)
