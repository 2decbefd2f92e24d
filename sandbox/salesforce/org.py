"""One emulated org: its database and the services every resource handler uses."""

from __future__ import annotations

from collections.abc import Callable

from sandbox.common import CallLog, Fault, FaultPlan
from sandbox.salesforce.auth import AuthService, OrgUser, SessionStore
from sandbox.salesforce.bulk import BulkService
from sandbox.salesforce.options import SalesforceCredentials, SalesforceOptions
from sandbox.salesforce.query import QueryService
from sandbox.salesforce.records import RecordEngine
from sandbox.salesforce.schema import PicklistValue
from sandbox.salesforce.store import Store
from sandbox.salesforce.wire import ApiUsage

# Login endpoints: the random fault rate never hits them, only faults injected for them.
AUTH_PREFIXES = ("/services/oauth2", "/services/Soap")


class SalesforceFaultPlan(FaultPlan):
    """A :class:`FaultPlan` that keeps login endpoints out of the random rate.

    Faults forced with a ``path_prefix`` under ``/services/oauth2`` or ``/services/Soap``
    still apply there, so tests can break a login on purpose.
    """

    def next_auth_fault(self, path: str) -> Fault | None:
        """The forced fault for a login request, if one targets login paths explicitly."""
        with self._lock:
            for forced in self._forced:
                if (
                    forced.remaining > 0
                    and forced.path_prefix.startswith(AUTH_PREFIXES)
                    and path.startswith(forced.path_prefix)
                ):
                    forced.remaining -= 1
                    self._forced = [f for f in self._forced if f.remaining > 0]
                    self.injected[forced.kind.value] += 1
                    return Fault(forced.kind, forced.status, forced.delay_seconds)
        return None


class Org:
    """Database, records, queries, bulk jobs, logins, limits, call log and fault plan."""

    def __init__(
        self,
        *,
        store: Store,
        options: SalesforceOptions,
        credentials: SalesforceCredentials,
        public_key_pem: bytes,
        base_url: Callable[[], str],
        seed: int,
    ) -> None:
        self.store = store
        self.options = options
        self.credentials = credentials
        self.base_url = base_url
        self.engine = RecordEngine(store)
        self.queries = QueryService(store, options)
        self.bulk = BulkService(store, self.queries, options)
        self.sessions = SessionStore(options.access_token_ttl_seconds, credentials.organization_id)
        self.auth = AuthService(
            credentials=credentials,
            sessions=self.sessions,
            find_user=self.find_user,
            public_key_pem=public_key_pem,
            require_security_token=options.require_security_token,
            base_url=base_url,
        )
        self.usage = ApiUsage(options.api_daily_limit)
        self.calls = CallLog()
        self.faults = SalesforceFaultPlan(seed=seed)

    def find_user(self, username: str) -> OrgUser | None:
        """The user called ``username`` (usernames are case-insensitive), if any."""
        row = self.store.fetch_one(
            'SELECT "Id", "Username", "IsActive" FROM "User" WHERE "Username" = ? COLLATE NOCASE',
            (username,),
        )
        return None if row is None else OrgUser(row[0], row[1], bool(row[2]))

    def stage_picklist(self) -> list[PicklistValue]:
        """StageName picklist entries from OpportunityStage, retired stages inactive."""
        rows = self.store.fetch_all(
            'SELECT "ApiName", "MasterLabel", "IsActive" FROM "OpportunityStage" '
            'ORDER BY "SortOrder"'
        )
        return [PicklistValue(row[0], row[1], bool(row[2])) for row in rows]

    def close(self) -> None:
        """Release cursors, jobs and the database connection."""
        self.queries.close_all()
        self.bulk.clear()
        self.store.close()
