"""One Salesforce sandbox (HTTPS, seeded) per test session, and configs that point at it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from connectors.salesforce.config import SalesforceConnectionConfig
from connectors.salesforce.retry import RetryPolicy
from sandbox.salesforce import SalesforceSandbox

# Retries as in production, minus the waiting: tests count attempts, not seconds.
FAST_RETRY = RetryPolicy(attempts=3, max_total_seconds=10.0, initial_wait=0.01, max_wait=0.05)

MakeConfig = Callable[..., SalesforceConnectionConfig]


@pytest.fixture(scope="session")
def sf_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SalesforceSandbox]:
    """The shared emulated org; tests that break it use the ``sandbox`` fixture."""
    org = SalesforceSandbox(seed=1, size="small", data_dir=tmp_path_factory.mktemp("sf-sandbox"))
    org.start()
    yield org
    org.stop()


@pytest.fixture
def sandbox(sf_sandbox: SalesforceSandbox) -> Iterator[SalesforceSandbox]:
    """The shared org, with faults and the API limit put back after the test."""
    sf_sandbox.faults.clear()
    yield sf_sandbox
    sf_sandbox.faults.clear()
    sf_sandbox.set_api_limit(100_000)


def auth_block(org: SalesforceSandbox, method: str, **overrides: Any) -> dict[str, Any]:
    """The ``auth`` block of a connection for one login method with the sandbox's credentials.

    ``method``: ``oauth-password``, ``soap``, ``refresh_token`` or ``jwt``.
    """
    creds = org.credentials
    blocks: dict[str, dict[str, Any]] = {
        "oauth-password": {
            "method": "password",
            "username": creds.username,
            "password": creds.password,
            "security_token": creds.security_token,
            "consumer_key": creds.consumer_key,
            "consumer_secret": creds.consumer_secret,
        },
        "soap": {
            "method": "password",
            "username": creds.username,
            "password": creds.password,
            "security_token": creds.security_token,
        },
        "refresh_token": {
            "method": "refresh_token",
            "consumer_key": creds.consumer_key,
            "consumer_secret": creds.consumer_secret,
            "refresh_token": creds.refresh_token,
        },
        "jwt": {
            "method": "jwt",
            "username": creds.username,
            "consumer_key": creds.consumer_key,
            "private_key_file": str(creds.jwt_private_key_path),
        },
    }
    return {**blocks[method], **overrides}


@pytest.fixture
def make_config(sandbox: SalesforceSandbox) -> MakeConfig:
    """Build a validated connection config against the sandbox (extra keys override)."""

    def build(method: str = "oauth-password", /, **extra: Any) -> SalesforceConnectionConfig:
        data: dict[str, Any] = {
            "name": "sf-test",
            "kind": "salesforce",
            "login_url": sandbox.url,
            "instance_url": sandbox.url,
            "ca_bundle": str(sandbox.ca_bundle),
            "allow_plaintext_secrets": True,
            "auth": auth_block(sandbox, method),
        }
        data.update(extra)
        return SalesforceConnectionConfig.model_validate(data, context={})

    return build
