"""Developer tool: write a new migration from the difference between models and schema.

Usage::

    python -m stagelink.storage.migrations "add push subscriptions"
    python -m stagelink.storage.migrations "..." --database-url postgresql://postgres@127.0.0.1/test

It migrates a scratch SQLite database (or the given one) to head, autogenerates a
revision against it into ``versions/`` and formats it with ruff. Always read and edit
the result: autogenerate misses renames and CHECK constraints.
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import tempfile
from pathlib import Path

from alembic import command

from stagelink.storage import db


def main(argv: list[str] | None = None) -> int:
    """Create a revision; returns the process exit code."""
    parser = argparse.ArgumentParser(prog="python -m stagelink.storage.migrations")
    parser.add_argument("message", help="what the migration does, e.g. 'add leases'")
    parser.add_argument("--database-url", help="compare against this database instead")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as scratch:
        url = args.database_url or f"sqlite:///{Path(scratch) / 'scratch.db'}"
        engine = db.make_engine(url)
        try:
            db.upgrade(engine)
            config = db._alembic_config()
            config.set_main_option(
                "file_template", "%%(year)d%%(month).2d%%(day).2d_%%(rev)s_%%(slug)s"
            )
            with engine.begin() as conn:
                config.attributes["connection"] = conn
                script = command.revision(config, message=args.message, autogenerate=True)
        finally:
            engine.dispose()
    scripts = script if isinstance(script, list) else [script]
    for item in scripts:
        if item is None:
            continue
        if importlib.util.find_spec("ruff") is not None:
            ruff = [sys.executable, "-m", "ruff"]
            subprocess.run([*ruff, "check", "--fix", "--quiet", item.path], check=False)
            subprocess.run([*ruff, "format", "--quiet", item.path], check=False)
        print(f"wrote {item.path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
