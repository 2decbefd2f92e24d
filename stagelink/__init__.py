"""stagelink: CRM-integration middleware for mobile sales enablement."""

__version__ = "0.1.0"
