"""Fixtures for the Salesforce sandbox tests: real simple-salesforce over real HTTPS.

Clients use a ``requests.Session`` that trusts the sandbox CA with ``trust_env=False``
(facts A1 / gotcha 2). Login flows hard-code ``https://{domain}.salesforce.com``, so
:class:`SalesforceHostRewrite` reroutes those hosts to the sandbox (gotcha 3).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
import requests
from requests.adapters import HTTPAdapter
from simple_salesforce import Salesforce

from sandbox.salesforce import SalesforceOptions, SalesforceSandbox

LOGIN_HOSTS = ("login.salesforce.com", "test.salesforce.com")


class SalesforceHostRewrite(HTTPAdapter):
    """Sends requests for Salesforce login hosts (and My Domains) to the sandbox instead."""

    def __init__(self, sandbox_url: str) -> None:
        super().__init__()
        self._netloc = urlsplit(sandbox_url).netloc

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: float | tuple[float, float] | tuple[float, None] | None = None,
        verify: bool | str = True,
        cert: bytes | str | tuple[bytes | str, bytes | str] | None = None,
        proxies: Mapping[str, str] | None = None,
    ) -> requests.Response:
        parts = urlsplit(request.url or "")
        host = parts.hostname or ""
        if host in LOGIN_HOSTS or host.endswith(".my.salesforce.com"):
            request.url = urlunsplit(("https", self._netloc, parts.path, parts.query, ""))
        return super().send(request, stream, timeout, verify, cert, proxies)


def https_session(sandbox: SalesforceSandbox, *, rewrite_logins: bool = False) -> requests.Session:
    """A session trusting the sandbox CA, immune to CA variables in the environment."""
    session = requests.Session()
    session.verify = str(sandbox.ca_bundle)
    session.trust_env = False
    if rewrite_logins:
        session.mount("https://", SalesforceHostRewrite(sandbox.url))
    return session


def direct_client(sandbox: SalesforceSandbox, **kwargs: Any) -> Salesforce:
    """A client in direct-session mode (session_id + instance_url): no re-login on 401."""
    return Salesforce(
        instance_url=sandbox.url,
        session_id=sandbox.issue_token(),
        session=https_session(sandbox),
        **kwargs,
    )


def password_client(sandbox: SalesforceSandbox) -> Salesforce:
    """A client that logs in with username, password and security token (SOAP login)."""
    creds = sandbox.credentials
    return Salesforce(
        username=creds.username,
        password=creds.password,
        security_token=creds.security_token,
        session=https_session(sandbox, rewrite_logins=True),
    )


@pytest.fixture(scope="session")
def sandbox_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache for seeds, keys and certificates per test run."""
    return tmp_path_factory.mktemp("sf-sandbox")


@pytest.fixture(scope="session")
def sf_org(sandbox_dir: Path) -> Iterator[SalesforceSandbox]:
    """The shared small org. Tests using it only read, or write records nobody else reads."""
    with SalesforceSandbox(seed=1, size="small", data_dir=sandbox_dir) as sandbox:
        yield sandbox


@pytest.fixture
def fresh_org(sandbox_dir: Path) -> Iterator[SalesforceSandbox]:
    """A private copy of the small org for tests that mutate, expire or fault heavily."""
    with SalesforceSandbox(seed=1, size="small", data_dir=sandbox_dir) as sandbox:
        yield sandbox


@pytest.fixture
def make_org(sandbox_dir: Path) -> Iterator[Any]:
    """Factory for private orgs with custom options; all are stopped after the test."""
    started: list[SalesforceSandbox] = []

    def make(**options: Any) -> SalesforceSandbox:
        sandbox = SalesforceSandbox(
            seed=1, size="small", data_dir=sandbox_dir, options=SalesforceOptions(**options)
        )
        sandbox.start()
        started.append(sandbox)
        return sandbox

    yield make
    for sandbox in started:
        sandbox.stop()


@pytest.fixture(scope="session")
def session_for() -> Any:
    """``session_for(sandbox, rewrite_logins=False)``: see :func:`https_session`."""
    return https_session


@pytest.fixture(scope="session")
def client_for() -> Any:
    """``client_for(sandbox)``: a direct-session simple-salesforce client."""
    return direct_client


@pytest.fixture
def sf(sf_org: SalesforceSandbox) -> Salesforce:
    """A direct-session client on the shared org."""
    return direct_client(sf_org)
