"""CRM connectors: the plugin contract (``connectors.core``) and the built-in CRM plugins."""
