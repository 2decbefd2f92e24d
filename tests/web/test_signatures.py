"""HubSpot signature verification as pure functions, against HubSpot's published vectors,
the sandbox's independent signer and the official library's ``Signature``."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from hubspot.utils.signature import Signature

from sandbox.hubspot.webhooks import sign_v3, signed_headers
from stagelink.web.signatures import (
    SignatureError,
    decode_reserved,
    verify_hubspot_request,
    verify_v1,
    verify_v2,
)

DOC_SECRET = "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy"
DOC_BODY = (
    b'[{"eventId":1,"subscriptionId":12345,"portalId":62515,"occurredAt":1564113600000,'
    b'"subscriptionType":"contact.creation","attemptNumber":0,"objectId":123,'
    b'"changeSource":"CRM","changeFlag":"NEW","appId":54321}]'
)
SECRET = "7f1c2a34-5b6d-4e8f-9a0b-1c2d3e4f5a6b"
URL = "https://stagelink.example.com/webhooks/hubspot/acme?install=a%3Ab&name=x%20y"
BODY = '[{"eventId":7,"objectId":301,"propertyValue":"Zürich"}]'
NOW = 1_782_371_972_438


def v3_headers(
    *, secret: str = SECRET, url: str = URL, body: str = BODY, stamp: int = NOW
) -> dict[str, str]:
    return signed_headers(
        client_secret=secret, method="POST", url=url, body=body, version="v3", timestamp_ms=stamp
    )


def verify(
    headers: dict[str, str], *, body: str = BODY, url: str = URL, now: int = NOW, **kw: Any
) -> str:
    return verify_hubspot_request(
        client_secret=SECRET,
        method="POST",
        uri=url,
        body=body.encode(),
        headers=httpx.Headers(headers),
        now_ms=now,
        **kw,
    )


def test_v1_and_v2_accept_hubspots_published_vectors_and_refuse_changes() -> None:
    v1 = "232db2615f3d666fe21a8ec971ac7b5402d33b9a925784df3ca654d05f4817de"
    verify_v1(client_secret=DOC_SECRET, body=DOC_BODY, signature=v1)
    verify_v1(client_secret=DOC_SECRET, body=DOC_BODY, signature=v1.upper())
    with pytest.raises(SignatureError, match="v1 signature does not match"):
        verify_v1(client_secret=DOC_SECRET, body=DOC_BODY + b" ", signature=v1)
    v2 = "eee2dddcc73c94d699f5e395f4b9d454a069a6855fbfa152e91e88823087200e"
    uri = "https://www.example.com/webhook_uri"
    verify_v2(client_secret=DOC_SECRET, method="GET", uri=uri, body=b"", signature=v2)
    with pytest.raises(SignatureError, match="v2 signature does not match"):
        verify_v2(client_secret=DOC_SECRET, method="GET", uri=uri + "/", body=b"", signature=v2)


def test_v3_accepts_what_hubspot_signs_and_agrees_with_the_official_library() -> None:
    now = int(time.time() * 1000)
    headers = v3_headers(stamp=now)
    assert verify(headers, now=now) == "v3"
    # The library does not decode the URI itself; given the decoded URI it agrees with us.
    assert Signature.is_valid(
        signature=headers["X-HubSpot-Signature-v3"],
        client_secret=SECRET,
        request_body=BODY,
        http_uri=decode_reserved(URL),
        http_method="POST",
        signature_version="v3",
        timestamp=headers["X-HubSpot-Request-Timestamp"],
    )


def test_v3_decodes_exactly_hubspots_reserved_characters() -> None:
    assert decode_reserved("https://h/p?a=%3A%2f%3F%40%21%24%27%28%29%2A%2C%3B&b=%20%26%25") == (
        "https://h/p?a=:/?@!$'()*,;&b=%20%26%25"
    )
    # A signer that hashed the URI without decoding (or decoded everything) is refused.
    for wrong in (URL, URL.replace("%20", " ").replace("%3A", ":")):
        stamp = NOW
        signature = sign_v3(SECRET, "POST", wrong, BODY, stamp)
        headers = {"X-HubSpot-Signature-v3": signature, "X-HubSpot-Request-Timestamp": str(stamp)}
        with pytest.raises(SignatureError, match="v3 signature does not match"):
            verify(headers)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"secret": "another-secret"}, "does not match"),
        ({"body": BODY.replace("301", "302")}, "does not match"),
        ({"url": URL.replace("acme", "other")}, "does not match"),
    ],
)
def test_v3_refuses_another_secret_body_or_url(change: dict[str, Any], reason: str) -> None:
    with pytest.raises(SignatureError, match=reason):
        verify(v3_headers(**change))


def test_v3_refuses_stale_and_future_timestamps_beyond_five_minutes() -> None:
    four_minutes = 4 * 60 * 1000
    six_minutes = 6 * 60 * 1000
    assert verify(v3_headers(stamp=NOW - four_minutes)) == "v3"
    assert verify(v3_headers(stamp=NOW + four_minutes)) == "v3"
    with pytest.raises(SignatureError, match=r"stale: 360 s old"):
        verify(v3_headers(stamp=NOW - six_minutes))
    with pytest.raises(SignatureError, match=r"360 s in the future"):
        verify(v3_headers(stamp=NOW + six_minutes))


def test_v3_refuses_a_timestamp_changed_after_signing() -> None:
    headers = v3_headers()
    headers["X-HubSpot-Request-Timestamp"] = str(NOW + 1)
    with pytest.raises(SignatureError, match="does not match"):
        verify(headers)


@pytest.mark.parametrize(
    ("drop", "reason"),
    [
        ("X-HubSpot-Signature-v3", "missing X-HubSpot-Signature-v3"),
        ("X-HubSpot-Request-Timestamp", "missing X-HubSpot-Request-Timestamp"),
    ],
)
def test_v3_refuses_a_missing_header(drop: str, reason: str) -> None:
    headers = v3_headers()
    del headers[drop]
    with pytest.raises(SignatureError, match=reason):
        verify(headers)


def test_v3_refuses_a_timestamp_that_is_not_a_number() -> None:
    headers = v3_headers()
    headers["X-HubSpot-Request-Timestamp"] = "yesterday"
    with pytest.raises(SignatureError, match="not epoch milliseconds"):
        verify(headers)


def test_v1_only_requests_are_refused_unless_legacy_is_accepted() -> None:
    # HubSpot sends a v1 signature next to every v3 one; it never expires, so it is replayable.
    headers = v3_headers()
    legacy = {k: v for k, v in headers.items() if "v3" not in k and "Timestamp" not in k}
    with pytest.raises(SignatureError, match=r"v3 .* signatures are required"):
        verify(legacy)
    assert verify(legacy, accept_legacy=True) == "v1"
    with pytest.raises(SignatureError, match="missing X-HubSpot-Signature-v3"):
        verify({})


def test_a_bad_v3_signature_is_not_rescued_by_a_good_v1() -> None:
    headers = v3_headers(stamp=NOW - 10 * 60 * 1000)  # stale v3, valid v1 beside it
    with pytest.raises(SignatureError, match="stale"):
        verify(headers, accept_legacy=True)


def test_v2_is_checked_over_the_exact_uri_when_legacy_is_accepted() -> None:
    headers = signed_headers(client_secret=SECRET, method="POST", url=URL, body=BODY, version="v2")
    assert verify(headers, accept_legacy=True) == "v2"
    with pytest.raises(SignatureError, match="v2 signature does not match"):
        verify(headers, accept_legacy=True, url=decode_reserved(URL))


def test_reasons_never_contain_the_secret() -> None:
    failures: list[str] = []
    for headers in (v3_headers(secret="x"), v3_headers(stamp=0), {}, {"X-HubSpot-Signature": "a"}):
        try:
            verify(headers, accept_legacy=True)
        except SignatureError as exc:
            failures.append(exc.reason)
    assert len(failures) == 4
    assert not [reason for reason in failures if SECRET in reason]
