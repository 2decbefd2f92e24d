"""``stagelink serve`` in a child process, for the benchmarks that measure it over HTTP."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx


class ServeChild:
    """``stagelink serve --config CONFIG`` on a free port, answering ``/healthz`` once
    started; ``extra_args`` are passed on (e.g. ``--no-scheduler``)."""

    def __init__(self, config_path: Path, directory: Path, *extra_args: str) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = directory / "serve.log"
        self.log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "stagelink.cli.main",
                "serve",
                "--config",
                str(config_path),
                "--port",
                str(self.port),
                "--node-id",
                "bench",
                *extra_args,
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        deadline = time.monotonic() + 30
        while not self._healthy():
            if time.monotonic() > deadline:
                raise TimeoutError("stagelink serve did not answer /healthz within 30 s")
            time.sleep(0.05)

    def _healthy(self) -> bool:
        if self.process.poll() is not None:
            tail = self.log_path.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"stagelink serve exited with {self.process.returncode}:\n{tail}")
        try:
            return httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self) -> None:
        """SIGTERM (graceful: requests finish, jobs stop at a checkpoint), then kill."""
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()
