"""Start the sandbox CRMs and write a stagelink configuration that points at them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from mapping.config import DEFAULT_CANONICAL_STAGES
from sandbox.hubspot import HubSpotSandbox
from sandbox.salesforce import SalesforceSandbox

SANDBOX_STAGE_MAPS = {
    "salesforce": {
        "Prospecting": "discover",
        "Discovery Call": "discover",
        "Qualification": "qualify",
        "Needs Analysis": "qualify",
        "Value Proposition": "solution",
        "Id. Decision Makers": "solution",
        "Perception Analysis": "solution",
        "Proposal/Price Quote": "proposal",
        "Negotiation/Review": "negotiate",
        "Closed Won": "closed_won",
        "Closed Lost": "closed_lost",
    },
    "hubspot": {
        "default/appointmentscheduled": "discover",
        "default/qualifiedtobuy": "qualify",
        "default/presentationscheduled": "solution",
        "default/decisionmakerboughtin": "proposal",
        "default/contractsent": "negotiate",
        "default/closedwon": "closed_won",
        "default/closedlost": "closed_lost",
        "2871935/2871936": "discover",
        "2871935/2871937": "solution",
        "2871935/2871938": "proposal",
        "2871935/2871939": "negotiate",
        "2871935/2871940": "closed_won",
        "2871935/2871941": "closed_lost",
    },
}


@dataclass
class RunningSandboxes:
    """The emulators that are up (either may be ``None``)."""

    salesforce: SalesforceSandbox | None
    hubspot: HubSpotSandbox | None


@contextmanager
def running_sandboxes(
    *,
    seed: int = 1,
    size: str | int = "small",
    data_dir: Path | None = None,
    salesforce_port: int = 0,
    hubspot_port: int = 0,
    salesforce: bool = True,
    hubspot: bool = True,
) -> Iterator[RunningSandboxes]:
    """Start the requested emulators on 127.0.0.1 and stop them on exit."""
    with ExitStack() as stack:
        sf = hs = None
        if salesforce:
            sf = SalesforceSandbox(seed=seed, size=size, data_dir=data_dir)
            sf.start(port=salesforce_port)
            stack.callback(sf.stop)
        if hubspot:
            hs = HubSpotSandbox(seed=seed, size=size, data_dir=data_dir)
            hs.start(port=hubspot_port)
            stack.callback(hs.stop)
        yield RunningSandboxes(salesforce=sf, hubspot=hs)


def salesforce_block(
    org: SalesforceSandbox, name: str = "sandbox-salesforce", **overrides: Any
) -> dict[str, Any]:
    """A Salesforce connection block (YAML/dict form) for the sandbox org, password login
    through its connected app; ``overrides`` replace or add keys."""
    creds = org.credentials
    block: dict[str, Any] = {
        "name": name,
        "kind": "salesforce",
        "instance_url": org.url,
        "login_url": org.url,
        "ca_bundle": str(org.ca_bundle.resolve()),
        "allow_plaintext_secrets": True,
        "auth": {
            "method": "password",
            "username": creds.username,
            "password": creds.password,
            "security_token": creds.security_token,
            "consumer_key": creds.consumer_key,
            "consumer_secret": creds.consumer_secret,
        },
    }
    block.update(overrides)
    return block


def hubspot_block(
    portal: HubSpotSandbox,
    name: str = "sandbox-hubspot",
    *,
    oauth: bool = False,
    **overrides: Any,
) -> dict[str, Any]:
    """A HubSpot connection block (YAML/dict form) for the sandbox portal, private-app token
    or OAuth; ``overrides`` replace or add keys."""
    creds = portal.credentials
    auth: dict[str, Any] = (
        {
            "method": "oauth",
            "client_id": creds.client_id,
            "client_secret": creds.client_secret,
            "refresh_token": creds.refresh_token,
        }
        if oauth
        else {"method": "private_app", "token": creds.private_app_token}
    )
    block: dict[str, Any] = {
        "name": name,
        "kind": "hubspot",
        "base_url": portal.url,
        "allow_plaintext_secrets": True,
        "auth": auth,
    }
    block.update(overrides)
    return block


#: The example configuration whose content catalog, rules and mapping the demo reuses.
EXAMPLE_CONFIG = Path(__file__).resolve().parents[2] / "config.example.yaml"


def example_mapping() -> dict[str, Any]:
    """The ``content``, ``rules`` and ``mapping`` blocks of ``config.example.yaml`` (made for
    the sandbox's stages and industries), with catalog paths made absolute; empty when the
    example is not there (an installed package without the repository)."""
    if not EXAMPLE_CONFIG.is_file():
        return {}
    example = yaml.safe_load(EXAMPLE_CONFIG.read_text(encoding="utf-8")) or {}
    blocks = {key: example[key] for key in ("content", "rules", "mapping") if key in example}
    # The example's HubSpot connection syncs a custom deal property product_line that the
    # sandbox portal does not have: leave references to it out of the demo's tag facts.
    tag_facts = blocks.get("mapping", {}).get("tag_facts", {})
    for name, fields in tag_facts.items():
        tag_facts[name] = [f for f in fields if f != "opportunity.product_line"]
    content = blocks.get("content")
    if isinstance(content, dict):
        content["catalogs"] = [
            str((EXAMPLE_CONFIG.parent / path).resolve()) for path in content.get("catalogs", [])
        ]
    return blocks


def sandbox_config_yaml(sandboxes: RunningSandboxes, *, database_url: str) -> str:
    """A complete stagelink configuration for the running sandboxes.

    The demo credentials are written in plain text on purpose (they only open the local
    sandbox), so each connection sets ``allow_plaintext_secrets: true``.
    """
    connections: list[dict[str, Any]] = []
    if sandboxes.salesforce is not None:
        connections.append(
            salesforce_block(
                sandboxes.salesforce,
                extra_fields={"opportunity": ["Product_Line__c"], "account": ["Region__c"]},
                stage_map=SANDBOX_STAGE_MAPS["salesforce"],
            )
        )
    if sandboxes.hubspot is not None:
        connections.append(
            hubspot_block(
                sandboxes.hubspot,
                app_client_secret=sandboxes.hubspot.credentials.client_secret,
                portal_id=sandboxes.hubspot.credentials.portal_id,
                stage_map=SANDBOX_STAGE_MAPS["hubspot"],
            )
        )
    config: dict[str, Any] = {
        "database_url": database_url,
        "canonical_stages": list(DEFAULT_CANONICAL_STAGES),
        "connections": connections,
    }
    config.update(example_mapping())
    header = "# Generated by stagelink for the local sandbox CRMs. Do not use for a real CRM.\n"
    return header + yaml.safe_dump(config, sort_keys=False, allow_unicode=True)
