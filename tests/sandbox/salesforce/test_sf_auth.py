"""Logins against the sandbox with the real simple-salesforce login code (facts A2, A3)."""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from simple_salesforce import Salesforce, SalesforceLogin
from simple_salesforce.exceptions import SalesforceAuthenticationFailed, SalesforceExpiredSession

from sandbox.salesforce import SalesforceSandbox


@pytest.fixture(autouse=True)
def _bind_session_helper(session_for: Any) -> None:
    global https_session
    https_session = session_for


https_session: Any = None

COUNT_QUERY = "SELECT COUNT() FROM Opportunity"


def _token(sandbox: SalesforceSandbox, data: dict[str, str], **kwargs: Any) -> requests.Response:
    return https_session(sandbox).post(f"{sandbox.url}/services/oauth2/token", data=data, **kwargs)


def test_soap_login_with_security_token_reaches_the_sandbox(sf_org: SalesforceSandbox) -> None:
    creds = sf_org.credentials
    before = sf_org.calls.snapshot().get("soap_login", 0)

    sf = Salesforce(
        username=creds.username,
        password=creds.password,
        security_token=creds.security_token,
        session=https_session(sf_org, rewrite_logins=True),
    )

    assert sf.sf_instance == f"127.0.0.1:{sf_org.port}"
    assert sf.query(COUNT_QUERY)["totalSize"] == sf_org.count("Opportunity")
    assert sf_org.calls.snapshot()["soap_login"] == before + 1


def test_soap_login_with_a_wrong_password_is_invalid_login(sf_org: SalesforceSandbox) -> None:
    creds = sf_org.credentials
    with pytest.raises(SalesforceAuthenticationFailed) as failure:
        Salesforce(
            username=creds.username,
            password="not-the-password",
            security_token=creds.security_token,
            session=https_session(sf_org, rewrite_logins=True),
        )
    assert failure.value.code == "INVALID_LOGIN"
    assert "Invalid username, password, security token" in failure.value.auth_message


def test_password_without_security_token_fails_unless_the_org_waives_it(
    sf_org: SalesforceSandbox, make_org: Any
) -> None:
    creds = sf_org.credentials
    with pytest.raises(SalesforceAuthenticationFailed) as failure:
        SalesforceLogin(
            username=creds.username,
            password=creds.password,
            session=https_session(sf_org, rewrite_logins=True),
        )
    assert failure.value.code == "INVALID_LOGIN"

    trusting = make_org(require_security_token=False)
    session_id, instance = SalesforceLogin(
        username=creds.username,
        password=creds.password,
        session=https_session(trusting, rewrite_logins=True),
    )
    assert session_id
    assert instance == f"127.0.0.1:{trusting.port}"


def test_oauth_password_flow_and_its_failures(sf_org: SalesforceSandbox) -> None:
    creds = sf_org.credentials

    def login(password: str, secret: str) -> Salesforce:
        return Salesforce(
            username=creds.username,
            password=password,
            consumer_key=creds.consumer_key,
            consumer_secret=secret,
            session=https_session(sf_org, rewrite_logins=True),
        )

    sf = login(creds.password + creds.security_token, creds.consumer_secret)
    assert sf.query(COUNT_QUERY)["totalSize"] > 0

    with pytest.raises(SalesforceAuthenticationFailed) as bad_password:
        login(creds.password, creds.consumer_secret)  # token missing
    assert (bad_password.value.code, bad_password.value.auth_message) == (
        "invalid_grant",
        "authentication failure",
    )
    with pytest.raises(SalesforceAuthenticationFailed) as bad_client:
        login(creds.password + creds.security_token, "wrong-secret")
    assert bad_client.value.code == "invalid_client"


def test_jwt_bearer_flow_with_the_generated_key(sf_org: SalesforceSandbox) -> None:
    creds = sf_org.credentials
    sf = Salesforce(
        username=creds.username,
        consumer_key=creds.consumer_key,
        privatekey_file=str(creds.jwt_private_key_path),
        session=https_session(sf_org, rewrite_logins=True),
    )
    assert sf.query(COUNT_QUERY)["totalSize"] > 0


def test_jwt_assertions_are_verified(sf_org: SalesforceSandbox) -> None:
    creds = sf_org.credentials
    session = https_session(sf_org, rewrite_logins=True)
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    stranger_pem = stranger.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    with pytest.raises(SalesforceAuthenticationFailed) as wrong_key:
        Salesforce(
            username=creds.username,
            consumer_key=creds.consumer_key,
            privatekey=stranger_pem,
            session=session,
        )
    assert wrong_key.value.code == "invalid_grant"

    with pytest.raises(SalesforceAuthenticationFailed) as wrong_app:
        Salesforce(
            username=creds.username,
            consumer_key="3MVG9someoneElsesApp",
            privatekey_file=str(creds.jwt_private_key_path),
            session=session,
        )
    assert wrong_app.value.code == "invalid_client_id"

    key = creds.jwt_private_key_path.read_bytes()
    claims = {
        "iss": creds.consumer_key,
        "sub": creds.username,
        "aud": "https://login.salesforce.com",
        "exp": str(int(time.time()) - 60),  # a string, as simple-salesforce sends it
    }
    expired = _token(
        sf_org,
        {
            "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
            "assertion": jwt.encode(claims, key, algorithm="RS256"),
        },
    )
    assert expired.status_code == 400
    assert expired.json()["error"] == "invalid_grant"


def test_client_credentials_flow_uses_basic_auth(sf_org: SalesforceSandbox) -> None:
    creds = sf_org.credentials
    session = https_session(sf_org, rewrite_logins=True)
    sf = Salesforce(
        consumer_key=creds.consumer_key,
        consumer_secret=creds.consumer_secret,
        domain="stagelink-demo.my",
        session=session,
    )
    assert sf.query(COUNT_QUERY)["totalSize"] > 0
    with pytest.raises(SalesforceAuthenticationFailed) as failure:
        Salesforce(
            consumer_key=creds.consumer_key,
            consumer_secret="nope",
            domain="stagelink-demo.my",
            session=session,
        )
    assert failure.value.code == "invalid_client"


def test_refresh_token_grant_issues_a_usable_token(sf_org: SalesforceSandbox) -> None:
    creds = sf_org.credentials
    answer = _token(
        sf_org,
        {
            "grant_type": "refresh_token",
            "refresh_token": creds.refresh_token,
            "client_id": creds.consumer_key,
            "client_secret": creds.consumer_secret,
        },
    )
    assert answer.status_code == 200
    body = answer.json()
    assert body["instance_url"] == sf_org.url
    assert not body["instance_url"].endswith("/")
    assert body["token_type"] == "Bearer"
    assert body["issued_at"].isdigit()
    assert body["signature"]
    assert body["id"].endswith(creds.user_id)

    sf = Salesforce(
        session_id=body["access_token"],
        instance_url=body["instance_url"],
        session=https_session(sf_org),
    )
    assert sf.query(COUNT_QUERY)["totalSize"] > 0

    stale = _token(
        sf_org,
        {
            "grant_type": "refresh_token",
            "refresh_token": "5Aep861revoked",
            "client_id": creds.consumer_key,
            "client_secret": creds.consumer_secret,
        },
    )
    assert stale.status_code == 400
    assert stale.json() == {
        "error": "invalid_grant",
        "error_description": "expired access/refresh token",
    }


def test_unsupported_grant_type(sf_org: SalesforceSandbox) -> None:
    answer = _token(sf_org, {"grant_type": "authorization_code_typo"})
    assert answer.status_code == 400
    assert answer.json()["error"] == "unsupported_grant_type"


def test_api_without_a_valid_token_is_a_json_list_401(sf_org: SalesforceSandbox) -> None:
    session = https_session(sf_org)
    for headers in ({}, {"Authorization": "Bearer 00Dxx!forged"}):
        answer = session.get(f"{sf_org.url}/services/data/v59.0/limits/", headers=headers)
        assert answer.status_code == 401
        assert answer.json() == [
            {"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}
        ]


def test_tokens_expire_after_their_lifetime(make_org: Any) -> None:
    sandbox = make_org(access_token_ttl_seconds=0.3)
    sf = Salesforce(
        instance_url=sandbox.url, session_id=sandbox.issue_token(), session=https_session(sandbox)
    )
    assert sf.query(COUNT_QUERY)["totalSize"] > 0
    time.sleep(0.4)
    with pytest.raises(SalesforceExpiredSession):
        sf.query(COUNT_QUERY)
