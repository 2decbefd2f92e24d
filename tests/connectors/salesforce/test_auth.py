"""Logins with every configured method, and what a person sees when one is refused."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests

from connectors.core.errors import ConfigurationError
from connectors.salesforce.auth import jwt_audience
from connectors.salesforce.client import SalesforceClient
from connectors.salesforce.errors import LoginFailedError, TlsVerificationError
from sandbox.salesforce import SalesforceSandbox

from .conftest import FAST_RETRY, MakeConfig, auth_block


@pytest.mark.parametrize("method", ["oauth-password", "soap", "refresh_token", "jwt"])
def test_each_login_method_gets_a_working_session(
    make_config: MakeConfig, sandbox: SalesforceSandbox, method: str
) -> None:
    before = sandbox.calls.snapshot()
    with SalesforceClient(make_config(method), retry=FAST_RETRY) as client:
        result = client.login()
        total = client.count("SELECT COUNT() FROM Account")
        identity = client.identity()
    after = sandbox.calls.snapshot()

    assert result.instance_url == sandbox.url
    assert total == sandbox.count("Account")
    assert identity == sandbox.credentials.username
    # SOAP goes to /services/Soap/u/{v} under login_url, the OAuth flows to the token endpoint.
    login_kind = "soap_login" if method == "soap" else "token"
    assert after.get(login_kind, 0) - before.get(login_kind, 0) == 1


def test_login_honours_login_url_not_salesforce_com(
    make_config: MakeConfig, sandbox: SalesforceSandbox
) -> None:
    # Without instance_url the org's URL comes from the login answer, and the login itself
    # went to login_url (the sandbox), not https://login.salesforce.com.
    config = make_config("jwt", instance_url=None)
    with SalesforceClient(config, retry=FAST_RETRY) as client:
        assert client.login().instance_url == sandbox.url


@pytest.mark.parametrize(
    ("method", "overrides", "expected"),
    [
        (
            "oauth-password",
            {"password": "Wrong-Passw0rd!"},
            "failed: invalid_grant — authentication failure",
        ),
        ("soap", {"password": "Wrong-Passw0rd!"}, "failed: INVALID_LOGIN — Invalid username"),
        (
            "oauth-password",
            {"consumer_secret": "WRONGSECRET"},
            "failed: invalid_client — invalid client credentials (check consumer_secret)",
        ),
        ("refresh_token", {"refresh_token": "5AepWRONGTOKEN"}, "failed: invalid_grant"),
    ],
)
def test_refused_login_says_why_without_the_secret(
    make_config: MakeConfig,
    sandbox: SalesforceSandbox,
    method: str,
    overrides: dict[str, str],
    expected: str,
) -> None:
    config = make_config(method, auth=auth_block(sandbox, method, **overrides))

    with (
        SalesforceClient(config, retry=FAST_RETRY) as client,
        pytest.raises(LoginFailedError) as caught,
    ):
        client.login()

    message = str(caught.value)
    assert message.startswith("Salesforce login for connection 'sf-test' ")
    assert expected in message
    for secret in (*overrides.values(), sandbox.credentials.security_token):
        assert secret not in message
    assert isinstance(caught.value, ConfigurationError)


def test_refused_login_is_not_retried(make_config: MakeConfig, sandbox: SalesforceSandbox) -> None:
    config = make_config(
        "oauth-password", auth=auth_block(sandbox, "oauth-password", password="nope")
    )
    before = sandbox.calls.snapshot().get("token", 0)
    with SalesforceClient(config, retry=FAST_RETRY) as client, pytest.raises(LoginFailedError):
        client.login()
    assert sandbox.calls.snapshot().get("token", 0) - before == 1


def test_jwt_with_a_key_that_is_not_a_key_is_a_configuration_error(
    make_config: MakeConfig, sandbox: SalesforceSandbox, tmp_path: Path
) -> None:
    bogus = tmp_path / "not-a-key.pem"
    bogus.write_text("this is not a PEM key\n")
    config = make_config("jwt", auth=auth_block(sandbox, "jwt", private_key_file=str(bogus)))

    with (
        SalesforceClient(config, retry=FAST_RETRY) as client,
        pytest.raises(ConfigurationError, match="cannot sign the JWT assertion"),
    ):
        client.login()


@pytest.mark.parametrize(
    ("login_url", "audience"),
    [
        ("https://login.salesforce.com", "https://login.salesforce.com"),
        ("https://test.salesforce.com", "https://test.salesforce.com"),
        ("https://acme.my.salesforce.com", "https://login.salesforce.com"),
        ("https://acme--uat.sandbox.my.salesforce.com", "https://test.salesforce.com"),
        ("https://127.0.0.1:8443", "https://127.0.0.1:8443"),
    ],
)
def test_jwt_audience_is_the_one_salesforce_accepts(login_url: str, audience: str) -> None:
    assert jwt_audience(login_url) == audience


def test_environment_ca_bundle_does_not_override_ca_bundle(
    make_config: MakeConfig, sandbox: SalesforceSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/nonexistent/bogus-ca.pem")
    monkeypatch.setenv("CURL_CA_BUNDLE", "/nonexistent/bogus-ca.pem")
    # The environment really is poisonous to a default session (facts gotcha 2)...
    with requests.Session() as plain:
        plain.verify = str(sandbox.ca_bundle)
        with pytest.raises(OSError, match="invalid path"):
            plain.get(f"{sandbox.url}/services/data/", timeout=5)
    # ...but not to a connection with ca_bundle.
    with SalesforceClient(make_config("oauth-password"), retry=FAST_RETRY) as client:
        assert client.count("SELECT COUNT() FROM Opportunity") > 0


def test_untrusted_certificate_is_a_configuration_error_with_the_ca_hint(
    make_config: MakeConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    config = make_config("oauth-password", ca_bundle=None)

    with (
        SalesforceClient(config, retry=FAST_RETRY) as client,
        pytest.raises(TlsVerificationError) as caught,
    ):
        client.login()

    assert "certificate verify failed" in str(caught.value)
    assert "set ca_bundle" in str(caught.value)
