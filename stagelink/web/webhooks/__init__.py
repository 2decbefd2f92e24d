"""Routers that receive CRM change notifications (one module per CRM)."""
