"""Salesforce Canvas signed requests: what verifies, what is refused, what is read.

Requests are signed by ``tests/surfaces/canvas_signing.py``, written from Salesforce's
documentation independently of the code under test. Salesforce publishes no vector with a
usable secret, so there is no official vector to check against.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest

from sandbox.salesforce.ids import make_id
from sandbox.salesforce.ids import to_18 as sandbox_to_18
from stagelink.surfaces.canvas import (
    MAX_SIGNED_REQUEST,
    CanvasError,
    read_context,
    to_18,
    verify_signed_request,
)
from tests.surfaces.canvas_signing import (
    OPPORTUNITY_ID,
    ORG_ID,
    SECRET,
    SESSION_TOKEN,
    USER_ID,
    encode,
    envelope,
    sign,
    signed_request,
)

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def refusal(
    text: str,
    secret: str = SECRET,
    *,
    now: datetime | None = None,
    max_age: timedelta | None = None,
) -> str:
    with pytest.raises(CanvasError) as caught:
        verify_signed_request(text, secret, now=now, max_age=max_age)
    return caught.value.reason


def test_a_signed_request_from_an_opportunity_page_names_the_user_and_the_deal() -> None:
    data = verify_signed_request(signed_request(), SECRET)
    assert data["userId"] == USER_ID
    context = read_context(data)
    assert context.user_id == USER_ID
    assert context.user_email == "ana.rep@example.com"  # e-mails compare case-insensitively
    assert context.user_name == "Ana Rep"
    assert context.organization_id == ORG_ID
    assert (context.record_id, context.record_type) == (OPPORTUNITY_ID, "Opportunity")
    assert (context.display_location, context.sub_location) == ("PageLayout", None)
    # The user's Salesforce session token never leaves the envelope.
    assert SESSION_TOKEN not in repr(context)


def test_the_mobile_app_passes_the_record_id_as_a_parameter_and_15_characters_are_widened() -> None:
    short = OPPORTUNITY_ID[:15]
    data = envelope(
        record_id=None,
        parameters={"recordId": short},
        display_location="MobileNav",
        sub_location="S1MobileCardFullview",
    )
    context = read_context(verify_signed_request(signed_request(data), SECRET))
    assert context.record_id == OPPORTUNITY_ID  # stored deals have 18-character ids
    assert context.record_type is None
    assert (context.display_location, context.sub_location) == ("MobileNav", "S1MobileCardFullview")


def test_a_changed_envelope_or_signature_or_another_secret_is_refused() -> None:
    genuine = signed_request()
    signature, encoded = genuine.split(".")
    # Another deal, keeping the old signature.
    forged = encode(envelope(record_id=make_id("006", 1)))
    assert "does not match" in refusal(f"{signature}.{forged}")
    # One flipped bit in the signature.
    raw = bytearray(base64.b64decode(signature))
    raw[0] ^= 1
    assert "does not match" in refusal(f"{base64.b64encode(bytes(raw)).decode()}.{encoded}")
    # Signed with a different consumer secret (another connected app).
    assert "does not match" in refusal(signed_request(secret="another-apps-consumer-secret"))
    # The right request checked against the wrong secret.
    assert "does not match" in refusal(genuine, secret="x" * 64)
    # Even padding appended to the envelope changes what was signed.
    assert "does not match" in refusal(f"{signature}.{encoded}=")


def test_only_hmac_sha256_is_accepted_even_when_correctly_signed() -> None:
    for algorithm in ("HMACSHA1", "none", ""):
        reason = refusal(signed_request(envelope(algorithm=algorithm)))
        assert "expected 'HMACSHA256'" in reason
    assert "None" in refusal(signed_request(envelope(algorithm=None)))
    # Case does not matter (Java's Mac.getInstance ignores it).
    verify_signed_request(signed_request(envelope(algorithm="HmacSHA256")), SECRET)


def test_malformed_requests_are_refused_before_anything_is_trusted() -> None:
    assert "empty" in refusal("  ")
    assert "'<signature>.<envelope>'" in refusal("no-dot-at-all")
    assert "'<signature>.<envelope>'" in refusal(".eyJ9")
    assert "signature is not Base64" in refusal("***." + encode(envelope()))
    assert "longer than" in refusal("a" * (MAX_SIGNED_REQUEST + 1))
    # Correctly signed, but not what Salesforce sends.
    assert "not JSON" in refusal(signed_request_of_text("{not json"))
    assert "JSON list" in refusal(signed_request_of_text("[1, 2]"))
    with pytest.raises(CanvasError, match="no consumer secret"):
        verify_signed_request(signed_request(), "")


def test_url_safe_base64_and_missing_padding_are_accepted_like_the_sdk_does() -> None:
    """commons-codec's ``Base64(true)`` in ``SignedRequest.java`` decodes both alphabets."""
    # Find an envelope whose signature uses '+' or '/' so the alphabets differ.
    for deal in range(1, 200):
        encoded = encode(envelope(record_id=make_id("006", deal)))
        signature = sign(encoded)
        if "+" in signature or "/" in signature:
            break
    url_safe = signature.replace("+", "-").replace("/", "_").rstrip("=")
    assert url_safe != signature
    data = verify_signed_request(f"{url_safe}.{encoded}", SECRET)
    assert data["context"]["environment"]["record"]["Id"] == make_id("006", deal)


def test_issued_at_is_only_checked_when_a_maximum_age_is_asked_for() -> None:
    """``issuedAt`` is "for internal use only" and usually null (see the module docstring)."""
    old = int((NOW - timedelta(hours=9)).timestamp() * 1000)
    verify_signed_request(signed_request(envelope(issued_at=old)), SECRET, now=NOW)
    verify_signed_request(
        signed_request(envelope(issued_at=None)), SECRET, now=NOW, max_age=timedelta(minutes=15)
    )
    fresh_ms = int((NOW - timedelta(minutes=2)).timestamp() * 1000)
    fresh_s = int((NOW - timedelta(minutes=2)).timestamp())
    for issued in (fresh_ms, fresh_s):
        verify_signed_request(
            signed_request(envelope(issued_at=issued)),
            SECRET,
            now=NOW,
            max_age=timedelta(minutes=15),
        )
    limit = timedelta(minutes=15)
    stale = signed_request(envelope(issued_at=old))
    assert "32400 s old" in refusal(stale, now=NOW, max_age=limit)
    ahead = signed_request(envelope(issued_at=int((NOW + timedelta(hours=1)).timestamp())))
    assert "in the future" in refusal(ahead, now=NOW, max_age=limit)
    garbage = signed_request(envelope(issued_at="yesterday"))
    assert "not a number" in refusal(garbage, now=NOW, max_age=limit)


def test_a_request_without_a_user_or_with_a_bogus_record_id_is_refused() -> None:
    data = envelope()
    del data["userId"]
    del data["context"]["user"]["userId"]
    with pytest.raises(CanvasError, match="no userId"):
        read_context(verify_signed_request(signed_request(data), SECRET))
    bogus = envelope(record_id="006'; DROP TABLE--")
    with pytest.raises(CanvasError, match="not a Salesforce id"):
        read_context(verify_signed_request(signed_request(bogus), SECRET))
    # A page without a record (a Visualforce tab, the previewer) reads as "no record".
    context = read_context(verify_signed_request(signed_request(envelope(record_id=None)), SECRET))
    assert context.record_id is None
    # No e-mail is read as unknown, not as an error: the route decides.
    nameless = read_context(verify_signed_request(signed_request(envelope(email=None)), SECRET))
    assert nameless.user_email is None


def test_15_character_ids_widen_like_salesforce_does() -> None:
    for sequence in (1, 61, 62, 3843, 999_999, 13_537_086_546):
        full = make_id("006", sequence)
        assert to_18(full[:15]) == full == sandbox_to_18(full[:15])
    assert to_18("001aBcDeFgHiJkL") == sandbox_to_18("001aBcDeFgHiJkL")
    assert to_18(OPPORTUNITY_ID) == OPPORTUNITY_ID
    with pytest.raises(ValueError, match="15 or 18"):
        to_18("006")


def signed_request_of_text(text: str) -> str:
    encoded = encode(text)
    return f"{sign(encoded)}.{encoded}"


def test_the_signed_text_is_the_encoded_envelope_not_the_json() -> None:
    """Signing the decoded JSON instead (a common mistake) must not verify."""
    data = envelope()
    encoded = encode(data)
    wrong = sign(json.dumps(data))
    assert "does not match" in refusal(f"{wrong}.{encoded}")
