"""``POST /api/v1/usage`` and ``/assign`` over real HTTP (uvicorn), on SQLite and PostgreSQL.

Deals come from a scripted CRM at the ``Connector`` seam (``FakeHubSpot``), so the held →
resolved path runs in milliseconds here; ``tests/usage/test_held_resolution.py`` runs it
against the sandbox CRMs through the real connectors.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from connectors.core.records import ObjectType
from stagelink.storage import ApiToken, OutboxState, UsageStatus, make_engine
from stagelink.surfaces.links import LinkSigner
from stagelink.sync.engine import SyncEngine
from stagelink.sync.runner import Storage
from stagelink.usage import IntakeLimits, UsageService
from stagelink.web import create_app
from tests.usage.helpers import (
    auth,
    catalog,
    event,
    make_token,
    notifications,
    row_counts,
    stored_events,
)

from .conftest import CONNECTION, FakeHubSpot, LiveServer, app_config, wait_for

URL = "/api/v1/usage"
ANA = "ana@example.com"


@dataclass
class Api:
    client: httpx.Client
    storage: Storage
    crm: FakeHubSpot
    service: UsageService
    #: An integration token and Ana's rep token.
    integration: str
    ana: str

    def post(self, events: Any, token: str | None = None, **kwargs: Any) -> httpx.Response:
        body = {"events": events} if isinstance(events, list) else events
        return self.client.post(URL, json=body, headers=auth(token or self.integration), **kwargs)

    def assign(self, client_event_id: str, opportunity_id: Any, token: str) -> httpx.Response:
        return self.client.post(
            f"{URL}/{client_event_id}/assign",
            json={"opportunity_id": opportunity_id},
            headers=auth(token),
        )

    def store_deals(self, *crm_ids: str) -> None:
        """Deals the CRM has and stagelink has synced."""
        for crm_id in crm_ids:
            self.crm.set_deal(crm_id, "qualifiedtobuy")
        engine = SyncEngine(self.storage.sessions, self.crm, connection_name=CONNECTION)
        assert engine.apply_ids(ObjectType.OPPORTUNITY, list(crm_ids), trigger="test").ok


@pytest.fixture
def usage_storage(database_url: str) -> Iterator[Storage]:
    engine = make_engine(database_url)
    yield Storage(engine)
    engine.dispose()


#: Signs the rep pages' ``sls_`` session bearers in these tests.
SIGNER = LinkSigner(b"k" * 32)


@contextmanager
def open_api(storage: Storage, crm: FakeHubSpot, **limits: Any) -> Iterator[Api]:
    config = app_config()
    service = UsageService(
        config,
        storage,
        catalog=catalog(),
        limits=IntakeLimits(**limits),
        connector_factory=lambda _settings: crm,
        signer=SIGNER,
    )
    app = create_app(config, storage, connector_factory=lambda _settings: crm)
    app.state.usage = service
    _, integration = make_token(storage, "web-page")
    _, ana = make_token(storage, "ana-phone", rep=ANA)
    try:
        with LiveServer(app) as server, httpx.Client(base_url=server.url, timeout=30) as client:
            yield Api(client, storage, crm, service, integration, ana)
    finally:
        service.close()


@pytest.fixture
def api(usage_storage: Storage, crm: FakeHubSpot) -> Iterator[Api]:
    with open_api(usage_storage, crm) as opened:
        yield opened


def statuses(response: httpx.Response) -> list[tuple[str, bool]]:
    assert response.status_code == 200, response.text
    return [(r["status"], r["duplicate"]) for r in response.json()["results"]]


# -- the happy paths ---------------------------------------------------------------------------


def test_a_batch_is_answered_per_event_and_accepted_events_get_their_outbox_row(
    api: Api,
) -> None:
    api.store_deals("301")
    api.crm.set_deal("302", "closedwon")  # in the CRM, not synced yet
    events = [
        event(CONNECTION, "301"),
        event(CONNECTION, "302", action="shared"),
        event(CONNECTION, None, action="viewed"),  # before the deal existed
        event(CONNECTION, "301", content_id="no-such-content"),
    ]
    with notifications() as notified:
        response = api.post(events)
        body = response.json()
        assert statuses(response) == [
            ("accepted", False),
            ("held", False),
            ("unassigned", False),
            ("rejected", False),
        ]
        assert [r["client_event_id"] for r in body["results"]] == [
            e["client_event_id"] for e in events
        ]
        assert body["results"][3]["reason"] == (
            "unknown content 'no-such-content' (not in the content catalog)"
        )
        assert body["counts"] == {
            "accepted": 1,
            "held": 1,
            "unassigned": 1,
            "rejected": 1,
            "duplicate": 0,
        }
        # The held deal is read from the CRM in the background, then accepted.
        wait_for(
            lambda: (
                stored_events(api.storage)[events[1]["client_event_id"]].status
                is UsageStatus.ACCEPTED
            )
        )
        wait_for(lambda: notified.count() == 2)
    assert notified.calls == [CONNECTION, CONNECTION]
    stored = stored_events(api.storage)
    assert set(stored) == {e["client_event_id"] for e in events[:3]}  # rejected: not stored
    first = stored[events[0]["client_event_id"]]
    assert (first.rep_email, first.opportunity_crm_id, first.content_id) == (
        ANA,
        "301",
        events[0]["content_id"],
    )
    assert first.duration_seconds == 42
    assert first.channel == "mobile_page"
    for accepted in (first, stored[events[1]["client_event_id"]]):
        assert accepted.outbox is not None
        assert accepted.outbox.state is OutboxState.PENDING
        assert accepted.outbox.external_marker == f"sl-{accepted.client_event_id}"
        assert accepted.outbox.connection_id == accepted.connection_id
    unassigned = stored[events[2]["client_event_id"]]
    assert (unassigned.status, unassigned.outbox) == (UsageStatus.UNASSIGNED, None)
    assert api.crm.reads == [(ObjectType.OPPORTUNITY, ["301"]), (ObjectType.OPPORTUNITY, ["302"])]


def test_a_retried_batch_creates_nothing_and_answers_the_current_status(api: Api) -> None:
    api.store_deals("301")
    events = [event(CONNECTION, "301"), event(CONNECTION, None), event(CONNECTION, "999")]
    first = api.post(events)
    assert statuses(first) == [("accepted", False), ("unassigned", False), ("held", False)]
    # 999 is unknown to the CRM: rejected once the read comes back.
    wait_for(
        lambda: (
            stored_events(api.storage)[events[2]["client_event_id"]].status is UsageStatus.REJECTED
        )
    )
    before = row_counts(api.storage)
    with notifications() as notified:
        again = api.post(events)
    assert statuses(again) == [("accepted", True), ("unassigned", True), ("rejected", True)]
    assert again.json()["results"][2]["reason"] == "the CRM does not know opportunity '999'"
    assert again.json()["counts"]["duplicate"] == 3
    assert row_counts(api.storage) == before == (3, 1)
    assert notified.calls == []  # nothing new was accepted


def test_a_rep_token_reports_only_for_its_rep(api: Api) -> None:
    api.store_deals("301")
    events = [
        event(CONNECTION, "301", rep=None),  # omitted: the token's rep
        event(CONNECTION, "301", rep="ANA@example.com "),  # same rep, other spelling
        event(CONNECTION, "301", rep="bob@example.com"),
    ]
    response = api.post(events, token=api.ana)
    assert statuses(response) == [("accepted", False), ("accepted", False), ("rejected", False)]
    assert response.json()["results"][2]["reason"] == (
        "this token reports for ana@example.com, not for bob@example.com"
    )
    stored = stored_events(api.storage)
    assert {stored[e["client_event_id"]].rep_email for e in events[:2]} == {ANA}
    # An integration token must say who did it.
    anonymous = api.post([event(CONNECTION, "301", rep=None)])
    assert anonymous.json()["results"][0]["reason"] == "rep is required with an integration token"


def test_a_rep_page_session_reports_only_for_its_rep_and_connection(api: Api) -> None:
    """The bearer a rendered rep page carries (``sls_``): a rep token for one connection."""
    api.store_deals("301")
    session = SIGNER.session_token(rep=ANA, connection=CONNECTION)
    events = [
        event(CONNECTION, "301", rep=None),
        event(CONNECTION, "301", rep="bob@example.com"),
        event("other-crm", "301", rep=None),
    ]
    response = api.post(events, token=session)
    assert statuses(response) == [("accepted", False), ("rejected", False), ("rejected", False)]
    reasons = [r["reason"] for r in response.json()["results"]]
    assert reasons[1] == "this token reports for ana@example.com, not for bob@example.com"
    assert reasons[2] == f"this page reports for connection {CONNECTION!r} only"
    stored = stored_events(api.storage)[events[0]["client_event_id"]]
    assert (stored.rep_email, stored.api_token_id) == (ANA, None)
    # A page session cannot take over events others reported.
    theirs = event(CONNECTION, None, rep="bob@example.com")
    assert statuses(api.post([theirs])) == [("unassigned", False)]
    refused = api.assign(theirs["client_event_id"], "301", token=session)
    assert refused.status_code == 403, refused.text


def test_forged_or_expired_page_sessions_get_401(api: Api) -> None:
    api.store_deals("301")
    forged = LinkSigner(b"x" * 32).session_token(rep=ANA, connection=CONNECTION)
    past = datetime.now(UTC) - timedelta(days=8)
    expired = LinkSigner(b"k" * 32, clock=lambda: past).session_token(
        rep=ANA, connection=CONNECTION
    )
    for token, reason in ((forged, "bad signature"), (expired, "expired at")):
        response = api.post([event(CONNECTION, "301", rep=None)], token=token)
        assert response.status_code == 401, response.text
        assert response.json()["code"] == "invalid_token"
        assert reason in response.json()["message"]
    assert row_counts(api.storage) == (0, 0)


# -- bad input: refused per event, never stored ------------------------------------------------


def test_duplicate_ids_inside_one_batch_reject_the_second(api: Api) -> None:
    api.store_deals("301")
    one = event(CONNECTION, "301")
    twin = {**one, "action": "shared"}
    response = api.post([one, event(CONNECTION, None), twin])
    assert statuses(response) == [("accepted", False), ("unassigned", False), ("rejected", False)]
    assert (
        response.json()["results"][2]["reason"] == "client_event_id repeats event 0 of this batch"
    )
    assert stored_events(api.storage)[one["client_event_id"]].action.value == "presented"
    assert row_counts(api.storage) == (2, 1)


def test_timestamps_out_of_the_window_and_unknown_connections_are_rejected(api: Api) -> None:
    api.store_deals("301")
    now = datetime.now(UTC)
    events = [
        event(CONNECTION, "301", occurred_at=now + timedelta(minutes=10)),
        event(CONNECTION, "301", occurred_at=now + timedelta(minutes=4)),  # clock skew: fine
        event(CONNECTION, "301", occurred_at=now - timedelta(days=91)),
        event(CONNECTION, "301", occurred_at=now - timedelta(days=89)),
        event("no-such-crm", "301"),
        # Another offset is the same instant: 10 minutes ahead, written in UTC+05:30.
        event(
            CONNECTION,
            "301",
            occurred_at=(now + timedelta(minutes=10)).astimezone(
                datetime.strptime("+0530", "%z").tzinfo
            ),
        ),
    ]
    response = api.post(events)
    assert statuses(response) == [
        ("rejected", False),
        ("accepted", False),
        ("rejected", False),
        ("accepted", False),
        ("rejected", False),
        ("rejected", False),
    ]
    reasons = [r["reason"] for r in response.json()["results"]]
    assert reasons[0].startswith("occurred_at is 9 minutes in the future")
    assert reasons[2] == "occurred_at is older than 90 days"
    assert reasons[4] == "unknown connection 'no-such-crm' (configured: hs)"
    assert row_counts(api.storage) == (2, 2)


def test_wrong_types_refuse_the_whole_batch_with_an_error_per_field(api: Api) -> None:
    api.store_deals("301")
    good = event(CONNECTION, "301")
    bad = [
        good,
        event(CONNECTION, "301", occurred_at=None) | {"occurred_at": "2026-01-05T10:00:00"},
        event(CONNECTION, "301") | {"duration_seconds": "42", "action": "emailed"},
        event(CONNECTION, "301") | {"client_event_id": "not-a-uuid", "rep": "nobody"},
        event(CONNECTION, 301),  # a number where the id is text
        event(CONNECTION, "301") | {"opportunityId": "301"},  # a typo must not lose the deal
        event(CONNECTION, "301") | {"occurred_at": 1767607200},  # epoch seconds: not ISO 8601
        event(CONNECTION, "301") | {"duration_seconds": -1},
    ]
    response = api.post(bad)
    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "invalid_request"
    found = {(e["index"], tuple(e["loc"][2:]), e["type"]) for e in body["errors"]}
    assert found == {
        (1, ("occurred_at",), "timezone_aware"),
        (2, ("duration_seconds",), "int_type"),
        (2, ("action",), "enum"),
        (3, ("client_event_id",), "uuid_parsing"),
        (3, ("rep",), "value_error"),
        (4, ("opportunity_id",), "string_type"),
        (5, ("opportunityId",), "extra_forbidden"),
        (6, ("occurred_at",), "datetime_type"),
        (7, ("duration_seconds",), "greater_than_equal"),
    }
    by_index = {e["index"]: e for e in body["errors"]}
    assert by_index[1]["client_event_id"] == bad[1]["client_event_id"]
    assert by_index[3]["client_event_id"] == "not-a-uuid"
    assert all(e["message"] for e in body["errors"])
    assert row_counts(api.storage) == (0, 0)  # not even the good event


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b'{"events": [', 400, "malformed_json"),
        (b"\xff\xfe not text", 400, "malformed_json"),
        (b"[]", 422, "invalid_request"),
        (b'{"events": []}', 422, "invalid_request"),
        (b'{"events": {"client_event_id": "x"}}', 422, "invalid_request"),
        (b'{"evnts": []}', 422, "invalid_request"),
    ],
)
def test_malformed_bodies_are_refused_with_a_code(
    api: Api, body: bytes, status: int, code: str
) -> None:
    response = api.client.post(URL, content=body, headers=auth(api.integration))
    assert response.status_code == status
    assert response.json()["code"] == code
    assert response.json()["message"]
    assert row_counts(api.storage) == (0, 0)


def test_batches_over_the_limits_are_refused_with_413(api: Api) -> None:
    api.store_deals("301")
    at_limit = [event(CONNECTION, "301") for _ in range(500)]
    response = api.post(at_limit)
    assert response.json()["counts"]["accepted"] == 500
    over = api.post([event(CONNECTION, "301") for _ in range(501)])
    assert over.status_code == 413
    assert over.json() == {
        "code": "batch_too_large",
        "message": "501 events in one batch; at most 500 are taken",
        "errors": [],
        "limit": 500,
    }
    huge = api.post([event(CONNECTION, "301", channel="x" * 1_000_000)])
    assert huge.status_code == 413
    assert (huge.json()["code"], huge.json()["limit"]) == ("body_too_large", 1_000_000)

    # Without a Content-Length (chunked), the bytes that arrive are counted.
    def chunks() -> Iterator[bytes]:
        yield b'{"events": ["'
        for _ in range(11):
            yield b"x" * 100_000
        yield b'"]}'

    chunked = api.client.post(URL, content=chunks(), headers=auth(api.integration))
    assert chunked.status_code == 413
    assert row_counts(api.storage) == (500, 500)


# -- tokens ------------------------------------------------------------------------------------


def test_requests_without_a_valid_token_get_401_with_a_json_error(api: Api) -> None:
    batch = {"events": [event(CONNECTION, None)]}
    missing = api.client.post(URL, json=batch)
    assert missing.status_code == 401
    assert missing.json()["code"] == "missing_token"
    assert missing.headers["www-authenticate"] == 'Bearer realm="stagelink"'
    basic = api.client.post(URL, json=batch, headers={"Authorization": "Basic dXNlcjpwdw=="})
    assert basic.json()["code"] == "missing_token"
    unknown = api.client.post(URL, json=batch, headers=auth("slk_" + "A" * 43))
    assert (unknown.status_code, unknown.json()["code"]) == (401, "invalid_token")
    assert 'error="invalid_token"' in unknown.headers["www-authenticate"]
    with api.storage.sessions.begin() as session:
        session.execute(
            update(ApiToken).where(ApiToken.name == "web-page").values(revoked_at=datetime.now(UTC))
        )
    revoked = api.post(batch)
    assert revoked.status_code == 401
    assert revoked.json()["message"].endswith("was revoked")
    _, expired = make_token(api.storage, "old", expires_in=timedelta(seconds=1))
    with api.storage.sessions.begin() as session:
        session.execute(
            update(ApiToken)
            .where(ApiToken.name == "old")
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    assert api.post(batch, token=expired).json()["message"].startswith("API token slk_")
    assert api.post(batch, token=expired).status_code == 401
    _, scoped = make_token(api.storage, "reader")
    with api.storage.sessions.begin() as session:
        session.execute(update(ApiToken).where(ApiToken.name == "reader").values(scopes=[]))
    refused = api.post(batch, token=scoped)
    assert (refused.status_code, refused.json()["code"]) == (403, "insufficient_scope")
    assert row_counts(api.storage) == (0, 0)


def test_last_used_is_recorded_at_most_once_a_minute(api: Api) -> None:
    def last_used() -> datetime | None:
        with api.storage.sessions() as session:
            return session.scalar(select(ApiToken.last_used_at).where(ApiToken.name == "web-page"))

    assert last_used() is None
    api.post([event(CONNECTION, None)])
    first = last_used()
    assert first is not None
    api.post([event(CONNECTION, None)])
    assert last_used() == first  # within the minute: not written again
    with api.storage.sessions.begin() as session:
        session.execute(
            update(ApiToken)
            .where(ApiToken.name == "web-page")
            .values(last_used_at=datetime.now(UTC) - timedelta(minutes=2))
        )
    api.post([event(CONNECTION, None)])
    latest = last_used()
    assert latest is not None
    assert latest > first


# -- assigning ---------------------------------------------------------------------------------


def test_an_unassigned_event_is_assigned_then_written_back_like_the_rest(api: Api) -> None:
    api.store_deals("301")
    api.crm.set_deal("305", "closedwon")  # not synced
    early, other = event(CONNECTION, None, rep=None), event(CONNECTION, None, rep=None)
    assert statuses(api.post([early, other], token=api.ana)) == [("unassigned", False)] * 2
    with notifications() as notified:
        response = api.assign(early["client_event_id"], "301", api.ana)
        assert response.status_code == 200
        assert response.json() == {
            "client_event_id": early["client_event_id"],
            "opportunity_id": "301",
            "status": "accepted",
            "duplicate": False,
            "reason": None,
        }
        assert notified.calls == [CONNECTION]
        # Not synced yet: held, read from the CRM, accepted.
        held = api.assign(other["client_event_id"], "305", api.ana)
        assert held.json()["status"] == "held"
        wait_for(
            lambda: (
                stored_events(api.storage)[other["client_event_id"]].status is UsageStatus.ACCEPTED
            )
        )
    stored = stored_events(api.storage)
    assert all(stored[e["client_event_id"]].outbox is not None for e in (early, other))
    # A retried assign answers the same; another opportunity is a conflict.
    again = api.assign(early["client_event_id"], "301", api.ana)
    assert (again.status_code, again.json()["duplicate"]) == (200, True)
    conflict = api.assign(early["client_event_id"], "305", api.ana)
    assert (conflict.status_code, conflict.json()["code"]) == (409, "conflict")
    assert row_counts(api.storage) == (2, 2)


def test_assign_refuses_other_reps_unknown_events_and_bad_input(api: Api) -> None:
    api.store_deals("301")
    mine = event(CONNECTION, None, rep=None)
    api.post([mine], token=api.ana)
    _, bob = make_token(api.storage, "bob-phone", rep="bob@example.com")
    forbidden = api.assign(mine["client_event_id"], "301", bob)
    assert (forbidden.status_code, forbidden.json()["code"]) == (403, "forbidden")
    missing = api.assign(str(uuid.uuid4()), "301", api.ana)
    assert (missing.status_code, missing.json()["code"]) == (404, "not_found")
    not_uuid = api.assign("nope", "301", api.ana)
    assert (not_uuid.status_code, not_uuid.json()["errors"][0]["loc"]) == (
        422,
        ["path", "client_event_id"],
    )
    wrong_type = api.assign(mine["client_event_id"], 301, api.ana)
    assert wrong_type.status_code == 422
    assert wrong_type.json()["errors"][0]["loc"] == ["opportunity_id"]
    unauthenticated = api.client.post(
        f"{URL}/{mine['client_event_id']}/assign", json={"opportunity_id": "301"}
    )
    assert unauthenticated.status_code == 401
    # A new phone for Ana (another token of the same rep), or an integration, may assign.
    _, ana_new = make_token(api.storage, "ana-new-phone", rep=ANA)
    assert api.assign(mine["client_event_id"], "301", ana_new).json()["status"] == "accepted"
    assert stored_events(api.storage)[mine["client_event_id"]].outbox is not None


def test_assigning_an_opportunity_the_crm_does_not_know_rejects_it_and_it_can_be_fixed(
    api: Api,
) -> None:
    api.store_deals("301")
    lost = event(CONNECTION, None)
    api.post([lost])
    assert api.assign(lost["client_event_id"], "777", api.integration).json()["status"] == "held"
    wait_for(
        lambda: stored_events(api.storage)[lost["client_event_id"]].status is UsageStatus.REJECTED
    )
    assert stored_events(api.storage)[lost["client_event_id"]].reason == (
        "the CRM does not know opportunity '777'"
    )
    fixed = api.assign(lost["client_event_id"], "301", api.integration)
    assert fixed.json()["status"] == "accepted"
    assert row_counts(api.storage) == (1, 1)


# -- concurrency -------------------------------------------------------------------------------


def test_the_same_batch_posted_concurrently_is_stored_once(api: Api) -> None:
    api.store_deals("301", "302")
    events = [event(CONNECTION, "301" if i % 2 else "302") for i in range(40)]
    answers: list[httpx.Response] = []
    lock = threading.Lock()

    def post() -> None:
        with httpx.Client(base_url=str(api.client.base_url), timeout=30) as client:
            response = client.post(URL, json={"events": events}, headers=auth(api.integration))
        with lock:
            answers.append(response)

    threads = [threading.Thread(target=post) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [a.status_code for a in answers] == [200] * 4
    fresh = [sum(not r["duplicate"] for r in a.json()["results"]) for a in answers]
    assert sum(fresh) == 40  # each event stored by exactly one of the requests
    assert all(r["status"] == "accepted" for a in answers for r in a.json()["results"])
    assert row_counts(api.storage) == (40, 40)


def test_the_database_going_away_answers_503_so_clients_retry(api: Api) -> None:
    # A PostgreSQL nobody listens on: every query fails the way an outage does.
    api.service.storage = Storage(make_engine("postgresql+psycopg://stagelink@127.0.0.1:9/gone"))
    try:
        response = api.post([event(CONNECTION, None)])
    finally:
        api.service.storage.dispose()
    assert response.status_code == 503
    assert (response.json()["code"], response.headers["retry-after"]) == ("unavailable", "5")
