"""The configuration loader: what an admin sees when the YAML is right, and when it is wrong."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from connectors.hubspot.config import HubSpotConnectionConfig
from connectors.salesforce.config import SalesforceConnectionConfig
from stagelink.settings import ConfigError, load_config, parse_config

REPO = Path(__file__).resolve().parents[2]

VALID_SALESFORCE = """
connections:
  - name: sf
    kind: salesforce
    auth:
      method: password
      username: api@example.com
      password: ${SF_PASSWORD}
"""


def problems_of(text: str, tmp_path: Path, environ: dict[str, str] | None = None) -> list[str]:
    source = tmp_path / "stagelink.yaml"
    source.write_text(textwrap.dedent(text), encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(source, environ=environ or {})
    return [p.render() for p in caught.value.problems]


def test_example_config_validates() -> None:
    config = load_config(REPO / "config.example.yaml", environ={})
    kinds = {c.name: type(c) for c in config.connections}
    assert kinds == {
        "salesforce-prod": SalesforceConnectionConfig,
        "hubspot-eu": HubSpotConnectionConfig,
    }
    assert config.connections[0].stage_map["Closed Won"] == "closed_won"
    assert [rule.id for rule in config.rules] == [
        "banking-proof",
        "big-deals-get-roi",
        "no-pricing-before-proposal",
        "upsell-playbook",
        "stalled-deals-get-references",
    ]
    # Relative paths are anchored at the config file, not the working directory.
    assert config.content.catalogs == [REPO / "examples" / "content"]
    assert config.database_url == f"sqlite:///{REPO / 'var' / 'stagelink.db'}"


def test_secrets_resolve_from_env_and_files_and_never_print(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("pat-na1-from-file\n", encoding="utf-8")
    text = """
    connections:
      - name: hs
        kind: hubspot
        auth: {method: private_app, token: "${file:token}"}
        app_client_secret: ${HS_SECRET}
    """
    source = tmp_path / "c.yaml"
    source.write_text(textwrap.dedent(text), encoding="utf-8")
    config = load_config(source, environ={"HS_SECRET": "s3cr3t"})
    connection = config.connections[0]
    assert isinstance(connection, HubSpotConnectionConfig)
    assert connection.auth.token.reveal() == "pat-na1-from-file"  # trailing newline dropped
    assert connection.app_client_secret is not None
    assert connection.app_client_secret.reveal() == "s3cr3t"
    assert "s3cr3t" not in repr(config)
    assert "pat-na1" not in repr(config)
    assert "s3cr3t" not in config.model_dump_json()


@pytest.mark.parametrize(
    ("text", "environ", "expected"),
    [
        pytest.param(
            "databse_url: sqlite:///x.db\n",
            {},
            ["line 1: databse_url: unknown key (did you mean 'database_url'?)"],
            id="near-miss-top-level-key",
        ),
        pytest.param(
            VALID_SALESFORCE.replace("username:", "usernme:"),
            {"SF_PASSWORD": "x"},
            [
                "line 7: connections[0].auth.usernme: unknown key (did you mean 'username'?)",
                "line 5: connections[0].auth.username: required key is missing",
            ],
            id="near-miss-inside-discriminated-union",
        ),
        pytest.param(
            VALID_SALESFORCE,
            {},
            ["line 8: connections[0].auth.password: environment variable SF_PASSWORD is not set"],
            id="missing-env-var",
        ),
        pytest.param(
            VALID_SALESFORCE.replace("${SF_PASSWORD}", "hunter2"),
            {},
            [
                "line 8: connections[0].auth.password: secret written in plain text; use "
                "${ENV_VAR} or ${file:/path} (allow_plaintext_secrets: true is only for "
                "sandbox connections)"
            ],
            id="plaintext-secret",
        ),
        pytest.param(
            VALID_SALESFORCE.replace("${SF_PASSWORD}", "${file:/nonexistent/secret}"),
            {},
            [
                "line 8: connections[0].auth.password: secret file '/nonexistent/secret' "
                "does not exist"
            ],
            id="missing-secret-file",
        ),
        pytest.param(
            VALID_SALESFORCE.replace("kind: salesforce", "kind: salesfroce"),
            {"SF_PASSWORD": "x"},
            [
                "line 4: connections[0].kind: expected one of the installed connector kinds "
                "(hubspot, salesforce), found 'salesfroce' (did you mean 'salesforce'?)"
            ],
            id="unknown-connector-kind",
        ),
        pytest.param(
            VALID_SALESFORCE.replace("method: password", "method: passwd"),
            {"SF_PASSWORD": "x"},
            [
                "line 5: connections[0].auth: Input tag 'passwd' found using 'method' does not "
                "match any of the expected tags: 'password', 'refresh_token', 'jwt'; "
                "found a mapping"
            ],
            id="unknown-login-method",
        ),
        pytest.param(
            """
            connections:
              - name: sf
                kind: salesforce
                auth:
                  method: jwt
                  username: api@example.com
                  consumer_key: key
                  private_key_file: /nonexistent/key.pem
            """,
            {},
            [
                "line 9: connections[0].auth.private_key_file: file '/nonexistent/key.pem' "
                "does not exist"
            ],
            id="unreadable-key-file",
        ),
        pytest.param(
            VALID_SALESFORCE + "    sync: {interval: soon}\n    api_version: v59.0\n",
            {"SF_PASSWORD": "x"},
            [
                "line 9: connections[0].sync.interval: expected a duration such as 30s, 15m, "
                "2h or 1d (or a number of seconds)",
                "line 10: connections[0].api_version: write the API version without a "
                "leading 'v', e.g. 59.0",
            ],
            id="wrong-types-all-reported",
        ),
        pytest.param(
            VALID_SALESFORCE + "    stage_map: {Prospecting: discovery}\n",
            {"SF_PASSWORD": "x"},
            [
                "line 9: connections[0].stage_map.Prospecting: maps to 'discovery', which is "
                "not a canonical stage (did you mean 'discover'?) (canonical_stages: discover, "
                "qualify, solution, proposal, negotiate, closed_won, closed_lost)"
            ],
            id="stage-map-to-unknown-canonical-stage",
        ),
        pytest.param(
            "database_url: sqlite:///a.db\ndatabase_url: sqlite:///b.db\n",
            {},
            ["line 2: database_url: duplicate key (YAML keeps only the last one)"],
            id="duplicate-yaml-key",
        ),
        pytest.param(
            "connections: [{name: a, kind: hubspot, auth: {method: private_app, token: "
            "'${T}'}}, {name: a, kind: hubspot, auth: {method: private_app, token: '${T}'}}]\n",
            {"T": "x"},
            ["line 1: connections[1].name: duplicate connection name 'a' (also connections[0])"],
            id="duplicate-connection-name",
        ),
        pytest.param(
            "rules:\n  - id: r\n    when: {stages: [proposl]}\n    select: {tags: [x]}\n",
            {},
            [
                "line 3: rules[0].when.stages[0]: 'proposl' is not a canonical stage "
                "(did you mean 'proposal'?)"
            ],
            id="rule-with-unknown-stage",
        ),
        pytest.param(
            "server: {port: 70000}\nlogging: {level: loud}\n",
            {},
            [
                "line 1: server.port: Input should be less than or equal to 65535",
                "line 2: logging.level: Input should be 'debug', 'info', 'warning' or "
                "'error'; found 'loud'",
            ],
            id="out-of-range-and-enum",
        ),
        pytest.param(
            "a: [1, 2\n",
            {},
            ["line 2: invalid YAML: expected ',' or ']', but got '<stream end>'"],
            id="malformed-yaml",
        ),
        pytest.param("", {}, ["the file is empty"], id="empty-file"),
        pytest.param(
            "- 1\n- 2\n", {}, ["expected a mapping at the top, found list"], id="not-a-mapping"
        ),
    ],
)
def test_bad_config_names_path_line_and_expectation(
    tmp_path: Path, text: str, environ: dict[str, str], expected: list[str]
) -> None:
    assert sorted(problems_of(text, tmp_path, environ)) == sorted(expected)


def test_sandbox_connection_may_allow_plaintext_secrets(tmp_path: Path) -> None:
    text = (
        VALID_SALESFORCE.replace("${SF_PASSWORD}", "demo") + "    allow_plaintext_secrets: true\n"
    )
    config = parse_config(textwrap.dedent(text), source=tmp_path / "c.yaml", environ={})
    connection = config.connections[0]
    assert isinstance(connection, SalesforceConnectionConfig)
    assert connection.auth.method == "password"
    assert connection.auth.password.reveal() == "demo"


def test_top_level_secret_key_must_never_be_plaintext(tmp_path: Path) -> None:
    assert problems_of("secret_key: abc\n", tmp_path) == [
        "line 1: secret_key: secret written in plain text; use ${ENV_VAR} or ${file:/path} "
        "(allow_plaintext_secrets: true is only for sandbox connections)"
    ]


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "nope.yaml", environ={})
