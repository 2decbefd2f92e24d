"""Run real ``stagelink serve`` processes for tests: a config for the sandboxes, a free port,
a log file, and signals (SIGTERM for a graceful stop, SIGKILL for a crash)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.sync.conftest import World


def write_serve_config(
    world: World,
    path: Path,
    *,
    database_url: str,
    sync: str = "1h",
    writeback: str = "1h",
    writeback_enabled: bool = True,
    scheduler: dict[str, Any] | None = None,
    **top_level: Any,
) -> Path:
    """The sandboxes' configuration with other intervals, database and scheduler block."""
    data = yaml.safe_load(world.config_path.read_text(encoding="utf-8"))
    data["database_url"] = database_url
    for connection in data["connections"]:
        connection["sync"] = {"interval": sync}
        connection["writeback"] = {
            **connection.get("writeback", {}),
            "interval": writeback,
            "enabled": writeback_enabled,
        }
    if scheduler:
        data["scheduler"] = scheduler
    data.update(top_level)
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class ServeProcess:
    """One ``stagelink serve`` subprocess."""

    process: subprocess.Popen[bytes]
    port: int
    node_id: str
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=kwargs.pop("timeout", 10), **kwargs)

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def terminate(self, timeout: float = 30.0) -> int:
        """SIGTERM, then wait for the exit code."""
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def kill(self) -> None:
        """kill -9: no shutdown code runs."""
        self.process.kill()
        self.process.wait(10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


def start_serve(
    config_path: Path, *, node_id: str, log_dir: Path, extra: list[str] | None = None
) -> ServeProcess:
    """Start ``stagelink serve`` and wait until it answers ``/healthz``."""
    port = free_port()
    log_path = log_dir / f"serve-{node_id}.log"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "stagelink.cli.main",
                "serve",
                "--config",
                str(config_path),
                "--port",
                str(port),
                "--node-id",
                node_id,
                *(extra or []),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
    serving = ServeProcess(process, port, node_id, log_path)
    deadline = time.monotonic() + 30
    while True:
        if process.poll() is not None:
            raise AssertionError(f"serve {node_id} exited early:\n{serving.log()}")
        try:
            if httpx.get(f"{serving.url}/healthz", timeout=1).status_code == 200:
                return serving
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            serving.stop()
            raise AssertionError(f"serve {node_id} did not answer within 30 s:\n{serving.log()}")
        time.sleep(0.1)
