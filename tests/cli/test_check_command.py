"""`stagelink check` and friends as an admin runs them: real process, real exit codes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
STAGELINK = Path(sys.executable).parent / "stagelink"


def run(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("STAGELINK_")}
    environ.update(env or {})
    environ["COLUMNS"] = "200"  # Rich wraps at the terminal width; keep lines whole
    return subprocess.run(
        [str(STAGELINK), *args], cwd=cwd, env=environ, capture_output=True, text=True, timeout=60
    )


def copy_example(tmp_path: Path) -> Path:
    shutil.copy(REPO / "config.example.yaml", tmp_path / "stagelink.yaml")
    shutil.copytree(REPO / "examples", tmp_path / "examples")
    return tmp_path / "stagelink.yaml"


def test_check_validates_the_example_and_reaches_the_database(tmp_path: Path) -> None:
    copy_example(tmp_path)
    result = run("check", "--json", cwd=tmp_path)  # ./stagelink.yaml is the default
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] is True
    assert report["database"]["reachable"] is True
    assert [c["name"] for c in report["connections"]] == ["salesforce-prod", "hubspot-eu"]
    assert report["connections"][0]["stages"] == 10


def test_config_from_environment_variable(tmp_path: Path) -> None:
    config = copy_example(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = run("check", cwd=elsewhere, env={"STAGELINK_CONFIG": str(config)})
    assert result.returncode == 0, result.stderr
    assert "configuration is valid" in result.stdout


def test_bad_config_exits_2_with_every_problem_and_no_traceback(tmp_path: Path) -> None:
    (tmp_path / "stagelink.yaml").write_text(
        "conections: []\n"
        "connections:\n"
        "  - name: sf\n"
        "    kind: salesforce\n"
        "    auth: {method: jwt, username: u, consumer_key: k, private_key_file: /no/key.pem}\n"
        "  - name: hs\n"
        "    kind: hubspot\n"
        "    auth: {method: private_app, token: '${HUBSPOT_TOKEN}'}\n",
        encoding="utf-8",
    )
    result = run("check", cwd=tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "stagelink.yaml: 3 problems" in result.stderr
    assert (
        "stagelink.yaml:1: conections: unknown key (did you mean 'connections'?)" in result.stderr
    )
    assert (
        "connections[0].auth.private_key_file: file '/no/key.pem' does not exist" in result.stderr
    )
    assert (
        "connections[1].auth.token: environment variable HUBSPOT_TOKEN is not set" in result.stderr
    )


def test_missing_config_file_exits_2(tmp_path: Path) -> None:
    result = run("check", "--config", "nope.yaml", cwd=tmp_path)
    assert result.returncode == 2
    assert "nope.yaml: 1 problem" in result.stderr
    assert "file not found" in result.stderr


def test_unreachable_database_exits_2_without_leaking_the_password(tmp_path: Path) -> None:
    config = copy_example(tmp_path)
    text = config.read_text(encoding="utf-8").replace(
        "database_url: sqlite:///var/stagelink.db",
        "database_url: postgresql://stagelink:hunter2@127.0.0.1:1/stagelink",
    )
    config.write_text(text, encoding="utf-8")
    result = run("check", cwd=tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr + result.stdout
    assert "hunter2" not in result.stderr + result.stdout
    assert "unreachable" in result.stdout


def test_db_upgrade_creates_the_schema(tmp_path: Path) -> None:
    copy_example(tmp_path)
    result = run("db", "upgrade", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "database at revision" in result.stdout
    assert (tmp_path / "var" / "stagelink.db").exists()
    again = run("check", "--json", cwd=tmp_path)
    assert json.loads(again.stdout)["database"]["revision"] is not None


def test_version_and_help() -> None:
    version = run("version", cwd=REPO)
    assert version.returncode == 0
    assert version.stdout.startswith("stagelink 0.")
    helptext = run("--help", cwd=REPO)
    for command in ("check", "db", "sandbox", "demo", "version"):
        assert command in helptext.stdout


def test_several_nodes_without_a_link_signing_key_fail_the_check_naming_the_key(
    tmp_path: Path, postgresql_database_url: str
) -> None:
    """On PostgreSQL every node must sign rep links with one key; the check says which."""
    (tmp_path / "stagelink.yaml").write_text(f"database_url: {postgresql_database_url}\n")
    result = run("check", "--json", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    report = json.loads(result.stdout)
    assert report["database"]["reachable"] is True
    assert report["surfaces"]["links"].startswith("surfaces.signing_key: required")
    (tmp_path / "stagelink.yaml").write_text(
        f"database_url: {postgresql_database_url}\nsurfaces:\n  signing_key: ${{LINK_KEY}}\n"
        "server:\n  public_url: https://stagelink.example.com\n"
    )
    fixed = run("check", "--json", cwd=tmp_path, env={"LINK_KEY": "k" * 40})
    assert fixed.returncode == 0, fixed.stdout
    assert json.loads(fixed.stdout)["surfaces"] == {
        "links": "ok",
        "public_url": "https://stagelink.example.com",
    }
