"""A local HubSpot account that behaves like the real CRM APIs (``crm-api-facts.md`` Part B).

Public API::

    from sandbox.hubspot import HubSpotSandbox, HubSpotOptions

    with HubSpotSandbox(seed=1, size="small") as hs:
        client = HubSpot(access_token=hs.credentials.private_app_token, host=hs.url)
        client.crm.deals.get_all()

Served: objects (companies, deals, contacts, notes, tasks) with list/read/CRUD/batch/search,
pipelines, owners, properties, associations v4, OAuth v1 tokens, timeline events; HubSpot's
status codes, error bodies, rate-limit headers and 429s; fault injection through
``hs.faults``; call counts in ``hs.calls``; admin endpoints under ``/__admin/``.
Outbound test drivers (signed webhooks and CRM-card fetches) live in
:mod:`sandbox.hubspot.webhooks`.
"""

from sandbox.hubspot.auth import HubSpotCredentials
from sandbox.hubspot.mutate import MutationSummary
from sandbox.hubspot.options import HubSpotOptions
from sandbox.hubspot.sandbox import HubSpotSandbox, default_data_dir
from sandbox.hubspot.seed import SeedPlan, plan_for

__all__ = [
    "HubSpotCredentials",
    "HubSpotOptions",
    "HubSpotSandbox",
    "MutationSummary",
    "SeedPlan",
    "default_data_dir",
    "plan_for",
]
