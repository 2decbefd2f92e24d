"""A third-party connector installed beside stagelink is found through the entry point,
configured from YAML with its own model, and synced by the shared engine.

The plugin is "installed" the way pip leaves a package on disk: a module plus a
``.dist-info`` folder whose ``entry_points.txt`` names it, on ``sys.path``. Nothing is
registered by hand; ``importlib.metadata`` discovers it exactly as it would a wheel.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from connectors.core.registry import available_plugins, load_plugin
from stagelink.cli.main import app
from stagelink.settings import ConfigError, parse_config
from stagelink.storage import CrmOpportunity, QuarantinedRecord, make_engine, session_factory

PLUGIN_SOURCE = Path(__file__).parent / "example_plugin" / "stagelink_example_crm.py"


@pytest.fixture
def installed_plugin(tmp_path: Path) -> Iterator[None]:
    site = tmp_path / "site-packages"
    site.mkdir()
    shutil.copy(PLUGIN_SOURCE, site / PLUGIN_SOURCE.name)
    dist = site / "stagelink_example_crm-0.1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: stagelink-example-crm\nVersion: 0.1.0\n"
    )
    (dist / "entry_points.txt").write_text(
        "[stagelink.connectors]\nexample-crm = stagelink_example_crm:PLUGIN\n"
    )
    sys.path.insert(0, str(site))
    available_plugins.cache_clear()
    yield
    sys.path.remove(str(site))
    sys.modules.pop("stagelink_example_crm", None)
    available_plugins.cache_clear()


@pytest.mark.usefixtures("installed_plugin")
def test_the_installed_plugin_is_discovered_beside_the_built_ins() -> None:
    plugins = available_plugins()

    assert {"salesforce", "hubspot", "example-crm"} <= set(plugins)
    assert load_plugin("example-crm").description.startswith("Example third-party")


@pytest.mark.usefixtures("installed_plugin")
def test_its_config_model_validates_connection_blocks(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(
            "connections:\n  - name: ex\n    kind: example-crm\n    page_size: many\n",
            source=tmp_path / "stagelink.yaml",
        )

    assert "connections[0].page_size" in caught.value.render()


@pytest.mark.usefixtures("installed_plugin")
def test_the_shared_engine_syncs_it_and_quarantines_its_bad_record(tmp_path: Path) -> None:
    database = tmp_path / "stagelink.db"
    config_file = tmp_path / "stagelink.yaml"
    config_file.write_text(
        f"database_url: sqlite:///{database}\nconnections:\n  - name: ex\n    kind: example-crm\n"
    )

    result = CliRunner().invoke(app, ["sync", "ex", "--config", str(config_file), "--json"])

    assert result.exit_code == 0, result.output
    engine = make_engine(f"sqlite:///{database}")
    try:
        with session_factory(engine)() as session:
            names = session.scalars(select(CrmOpportunity.name).order_by(CrmOpportunity.crm_id))
            assert list(names) == ["Hafen AG rollout", "Café Lumière"]
            reason = session.scalars(select(QuarantinedRecord.reason)).one()
            assert reason == "field 'value': expected a number, got 'lots'"
    finally:
        engine.dispose()


def test_an_unknown_kind_names_the_installed_ones() -> None:
    with pytest.raises(Exception, match=r"installed: .*hubspot.*salesforce"):
        load_plugin("pipedrive")
