"""Salesforce sandbox: an HTTPS emulator of the Salesforce REST, Bulk 2.0 and login APIs.

It behaves like a real org as documented in ``crm-api-facts.md`` Part A, driven through
the real ``simple-salesforce`` library: OAuth and SOAP logins, SOQL query paging with
relative ``nextRecordsUrl``, describe, sObject CRUD and upsert by external id, Get
Updated/Deleted, sObject Collections, Composite, Bulk API 2.0 query jobs, the daily API
limit, session expiry and injectable faults. See :class:`SalesforceSandbox`.
"""

from sandbox.salesforce.options import MutationSummary, SalesforceCredentials, SalesforceOptions
from sandbox.salesforce.sandbox import SalesforceSandbox, default_data_dir

__all__ = [
    "MutationSummary",
    "SalesforceCredentials",
    "SalesforceOptions",
    "SalesforceSandbox",
    "default_data_dir",
]
