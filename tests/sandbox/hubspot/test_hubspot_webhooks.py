"""Outbound drivers: webhook batches and CRM-card fetches, checked with the library's Signature."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hubspot.exceptions import InvalidSignatureTimestampError
from hubspot.utils.signature import Signature
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from sandbox.common import BackgroundServer
from sandbox.hubspot.webhooks import (
    make_card_fetch_request,
    send_webhook_batch,
    sign_v1,
    sign_v2,
)

DOC_SECRET = "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy"
DOC_BODY = (
    '[{"eventId":1,"subscriptionId":12345,"portalId":62515,"occurredAt":1564113600000,'
    '"subscriptionType":"contact.creation","attemptNumber":0,"objectId":123,'
    '"changeSource":"CRM","changeFlag":"NEW","appId":54321}]'
)
SECRET = "7f1c2a34-5b6d-4e8f-9a0b-1c2d3e4f5a6b"
# HubSpot's table of reserved characters a receiver decodes before checking a v3 signature.
RESERVED = {"%3A": ":", "%2F": "/", "%3F": "?", "%40": "@", "%21": "!", "%24": "$",
            "%27": "'", "%28": "(", "%29": ")", "%2A": "*", "%2C": ",", "%3B": ";"}  # fmt: skip


def receiver_uri(uri: str) -> str:
    return re.sub("|".join(RESERVED), lambda m: RESERVED[m.group(0).upper()], uri, flags=re.I)


@pytest.fixture(scope="module")
def receiver() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A tiny app endpoint that records what it was sent."""
    seen: list[dict[str, Any]] = []

    async def record(request: Request) -> JSONResponse:
        seen.append(
            {
                "method": request.method,
                "url": str(request.url),
                "headers": dict(request.headers),
                "body": (await request.body()).decode(),
            }
        )
        return JSONResponse({"results": []})

    app = Starlette(routes=[Route("/{path:path}", record, methods=["GET", "POST"])])
    server = BackgroundServer(app)
    server.start()
    yield server.url, seen
    server.stop()


def test_v1_and_v2_match_hubspots_published_vectors() -> None:
    assert sign_v1(DOC_SECRET, DOC_BODY) == (
        "232db2615f3d666fe21a8ec971ac7b5402d33b9a925784df3ca654d05f4817de"
    )
    assert sign_v2(DOC_SECRET, "GET", "https://www.example.com/webhook_uri", "") == (
        "eee2dddcc73c94d699f5e395f4b9d454a069a6855fbfa152e91e88823087200e"
    )


def test_webhook_batch_is_a_signed_json_array(receiver: tuple[str, list[dict[str, Any]]]) -> None:
    url, seen = receiver
    events = [
        {"eventId": 2995724042, "subscriptionId": 6547123, "portalId": 48000001, "appId": 1000001,
         "occurredAt": 1782371972438, "subscriptionType": "deal.propertyChange",
         "attemptNumber": 0, "objectId": 30000000001, "propertyName": "dealstage",
         "propertyValue": "closedwon", "changeSource": "CRM_UI", "sourceId": "userId:9000001"},
        {"eventId": 1, "subscriptionType": "deal.deletion", "changeFlag": "DELETED",
         "objectId": 30000000002, "occurredAt": 1782371972500},
    ]  # fmt: skip
    target = f"{url}/hooks/hubspot?install=a%3Ab"
    response = send_webhook_batch(target, events, client_secret=SECRET)
    assert response.status_code == 200
    sent = seen[-1]
    assert sent["method"] == "POST"
    assert json.loads(sent["body"]) == events
    headers = sent["headers"]
    assert Signature.is_valid(
        signature=headers["x-hubspot-signature-v3"],
        client_secret=SECRET,
        request_body=sent["body"],
        http_uri=receiver_uri(sent["url"]),
        http_method="POST",
        signature_version="v3",
        timestamp=headers["x-hubspot-request-timestamp"],
    )
    assert Signature.is_valid(
        signature=headers["x-hubspot-signature"],
        client_secret=SECRET,
        request_body=sent["body"],
        signature_version="v1",
    )
    assert not Signature.is_valid(
        signature=headers["x-hubspot-signature-v3"],
        client_secret="another-secret",
        request_body=sent["body"],
        http_uri=receiver_uri(sent["url"]),
        http_method="POST",
        signature_version="v3",
        timestamp=headers["x-hubspot-request-timestamp"],
    )


def test_card_fetch_carries_hubspot_parameters_and_valid_signatures(
    receiver: tuple[str, list[dict[str, Any]]],
) -> None:
    base, seen = receiver
    url, headers = make_card_fetch_request(
        f"{base}/hubspot/card",
        client_secret=SECRET,
        portal_id=48000001,
        user_id=9000001,
        user_email="rep@stagelink-demo.example",
        object_id=30000000001,
        properties={"dealname": "Zürich rollout & more", "hs_object_id": "30000000001"},
    )
    assert httpx.get(url, headers=headers).status_code == 200
    sent = seen[-1]
    query = httpx.URL(sent["url"]).params
    assert query["associatedObjectType"] == "DEAL"
    assert query["userEmail"] == "rep@stagelink-demo.example"
    assert query["dealname"] == "Zürich rollout & more"
    assert Signature.is_valid(
        signature=sent["headers"]["x-hubspot-signature-v3"],
        client_secret=SECRET,
        request_body="",
        http_uri=receiver_uri(sent["url"]),
        http_method="GET",
        signature_version="v3",
        timestamp=sent["headers"]["x-hubspot-request-timestamp"],
    )
    assert Signature.is_valid(
        signature=sent["headers"]["x-hubspot-signature"],
        client_secret=SECRET,
        request_body="",
        http_uri=sent["url"],
        http_method="GET",
        signature_version="v2",
    )


def test_stale_card_fetch_is_rejected_by_the_library() -> None:
    ten_minutes_ago = int(time.time() * 1000) - 600_000
    url, headers = make_card_fetch_request(
        "https://app.example.com/card",
        client_secret=SECRET,
        portal_id=1,
        user_id=2,
        user_email="a@b.example",
        object_id=3,
        timestamp_ms=ten_minutes_ago,
    )
    with pytest.raises(InvalidSignatureTimestampError):
        Signature.is_valid(
            signature=headers["X-HubSpot-Signature-v3"],
            client_secret=SECRET,
            request_body="",
            http_uri=receiver_uri(url),
            http_method="GET",
            signature_version="v3",
            timestamp=headers["X-HubSpot-Request-Timestamp"],
        )
