"""What Salesforce sends a Canvas app with signed-request access, built independently of
``stagelink.surfaces.canvas`` (shares no code with it).

Salesforce publishes no test vector with its secret (the guide's example is truncated), so
tests sign requests the way the Canvas Developer Guide and the SDK's ``SignedRequest.java``
describe: Base64 of the CanvasRequest JSON, and Base64 of HMAC-SHA256 over that *encoded*
string keyed with the consumer secret, joined by a dot.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

from sandbox.salesforce.ids import make_id

SECRET = "4A1B2C3D4E5F60718293A4B5C6D7E8F9012345678901234567890ABCDEF01234"
USER_ID = make_id("005", 7)
ORG_ID = make_id("00D", 1)
OPPORTUNITY_ID = make_id("006", 4242)
SESSION_TOKEN = "00Dxx0000001gPF!ARQAQJ34YLUq54RMTrQbxVoWUgorjFi3DO-not-a-real-token"


def envelope(
    *,
    record_id: str | None = OPPORTUNITY_ID,
    record_type: str | None = "Opportunity",
    email: str | None = "Ana.Rep@Example.com",
    algorithm: str | None = "HMACSHA256",
    issued_at: Any = None,
    parameters: dict[str, Any] | None = None,
    display_location: str = "PageLayout",
    sub_location: str | None = None,
) -> dict[str, Any]:
    """A CanvasRequest shaped like the guide's example (trimmed to the parts that matter)."""
    record: dict[str, Any] = {}
    if record_id is not None:
        record = {"Id": record_id, "Name": "Nordbank renewal", "StageName": "Proposal"}
        if record_type is not None:
            url = f"/services/data/v59.0/sobjects/{record_type}/{record_id}"
            record["attributes"] = {"type": record_type, "url": url}
    user: dict[str, Any] = {
        "userId": USER_ID,
        "userName": "ana.rep@example.com.acme",
        "fullName": "Ana Rep",
        "firstName": "Ana",
        "lastName": "Rep",
        "language": "en_US",
        "locale": "en_US",
        "timeZone": "Europe/Berlin",
        "userType": "STANDARD",
    }
    if email is not None:
        user["email"] = email
    body: dict[str, Any] = {
        "context": {
            "application": {
                "name": "stagelink",
                "canvasUrl": "https://stagelink.example.com/canvas/salesforce/sf",
                "authType": "SIGNED_REQUEST",
                "namespace": None,
                "version": "1.0",
            },
            "user": user,
            "environment": {
                "parameters": parameters or {},
                "dimensions": {"width": "800px", "height": "900px"},
                "record": record,
                "displayLocation": display_location,
                "subLocation": sub_location,
                "locationUrl": "https://acme.lightning.force.com/lightning/r/Opportunity/view",
                "uiTheme": "Theme4d",
                "version": {"api": "59.0", "season": "WINTER"},
            },
            "organization": {"organizationId": ORG_ID, "name": "Acme", "currencyIsoCode": "EUR"},
            "links": {"restUrl": "/services/data/v59.0/"},
        },
        "client": {
            "instanceId": "_:stagelink:",
            "instanceUrl": "https://acme.my.salesforce.com",
            "oauthToken": SESSION_TOKEN,
            "refreshToken": None,
            "targetOrigin": "https://acme.lightning.force.com",
        },
        "userId": USER_ID,
        "issuedAt": issued_at,
    }
    if algorithm is not None:
        body["algorithm"] = algorithm
    return body


def encode(data: dict[str, Any] | str) -> str:
    """The envelope part: Base64 (standard alphabet) of the JSON."""
    text = data if isinstance(data, str) else json.dumps(data)
    return base64.b64encode(text.encode()).decode()


def sign(encoded_envelope: str, secret: str = SECRET) -> str:
    """The signature part: Base64 of HMAC-SHA256 over the encoded envelope."""
    digest = hmac.new(secret.encode(), encoded_envelope.encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def signed_request(data: dict[str, Any] | None = None, secret: str = SECRET) -> str:
    """``<signature>.<envelope>`` as Salesforce posts it in the ``signed_request`` field."""
    encoded = encode(data if data is not None else envelope())
    return f"{sign(encoded, secret)}.{encoded}"
