"""The ``stagelink serve`` process under test: started, SIGKILLed at random moments, restarted.

Every incarnation listens on the same port (clients keep one address, as behind a load
balancer) and uses the default node id ``hostname:pid``, so a restart takes over the leases
of the process it replaces at once — the path a real restart after ``kill -9`` takes. The
port lies below the ephemeral range, so no outgoing connection of this busy host can take it
while the server is down between a kill and its restart.
"""

from __future__ import annotations

import os
import random
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from tests.scheduler.serving import ServeProcess, free_port

#: Where listening ports are looked for: below Linux's default ephemeral range.
_PORTS = range(20_000, 32_768)

__all__ = ["ServeNode", "ServeStartError"]

_ROOT = Path(__file__).resolve().parents[1]


class ServeStartError(RuntimeError):
    """``stagelink serve`` exited or did not answer ``/healthz`` in time."""


class ServeNode:
    """One ``stagelink serve`` at a time, and the thread that kills and restarts it."""

    def __init__(
        self,
        config_path: Path,
        log_dir: Path,
        *,
        kill_every: float,
        rng: random.Random,
        start_timeout: float = 60.0,
    ) -> None:
        self.config_path = config_path
        self.log_dir = log_dir
        self.kill_every = kill_every
        self.rng = rng
        self.start_timeout = start_timeout
        self.port = _quiet_port()
        self.kills = 0
        self.restarts = 0
        self.incarnations = 0
        self._current: ServeProcess | None = None
        self._chaos_stop = threading.Event()
        self._chaos: threading.Thread | None = None
        self.error: BaseException | None = None
        #: Incarnations that ended on their own (not by our SIGKILL): (number, exit code).
        self.crashed: list[tuple[int, int]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start an incarnation and wait until it answers ``/healthz`` (on another port if
        something else took this one meanwhile)."""
        for _ in range(3):
            try:
                self._start()
            except ServeStartError as exc:
                if "address already in use" not in str(exc).lower():
                    raise
                self.port = _quiet_port()
            else:
                return
        self._start()

    def _start(self) -> None:
        self.incarnations += 1
        log_path = self.log_dir / f"serve-{self.incarnations}.log"
        command = [sys.executable, "-m", "stagelink.cli.main", "serve"]
        command += ["--config", str(self.config_path), "--port", str(self.port)]
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                command,
                cwd=_ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        serving = ServeProcess(process, self.port, f"pid {process.pid}", log_path)
        self._current = serving
        deadline = time.monotonic() + self.start_timeout
        while True:
            if process.poll() is not None:
                raise ServeStartError(f"stagelink serve exited early:\n{serving.log()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                serving.stop()
                raise ServeStartError(
                    f"stagelink serve did not answer within {self.start_timeout:.0f} s:\n"
                    f"{serving.log()[-3000:]}"
                )
            time.sleep(0.1)

    def start_chaos(self) -> None:
        """Kill the process at random moments (and restart it) until :meth:`stop_chaos`."""
        self._chaos = threading.Thread(target=self._kill_loop, name="soak-kills", daemon=True)
        self._chaos.start()

    def stop_chaos(self) -> None:
        """No more kills; returns with a process running (restarted if the last kill left
        none)."""
        self._chaos_stop.set()
        if self._chaos is not None:
            self._chaos.join()
        if self.error is not None:
            raise self.error
        current = self._current
        if current is None or current.process.poll() is not None:
            self.start()
            self.restarts += 1

    def terminate(self, timeout: float = 60.0) -> int:
        """SIGTERM the running process (graceful shutdown); its exit code."""
        current = self._current
        if current is None or current.process.poll() is not None:
            return current.process.returncode if current is not None else 0
        return current.terminate(timeout)

    def kill(self) -> None:
        """kill -9 whatever runs now (cleanup)."""
        if self._current is not None:
            self._current.stop()

    def _kill_loop(self) -> None:
        try:
            while not self._chaos_stop.wait(self.rng.uniform(0.3, 1.7) * self.kill_every):
                current = self._current
                assert current is not None
                if current.process.poll() is not None:
                    # It died on its own: that is a crash, not one of ours.
                    self.crashed.append((self.incarnations, current.process.returncode))
                else:
                    current.kill()
                    self.kills += 1
                # A short, random outage before the restart (clients meet refused
                # connections and keep their queue).
                if self._chaos_stop.wait(self.rng.uniform(0.0, 1.5)):
                    return
                self.start()
                self.restarts += 1
        except BaseException as exc:
            self.error = exc


def _quiet_port() -> int:
    """A free port outside the ephemeral range (any free port when none is found)."""
    chooser = random.SystemRandom()
    for _ in range(100):
        port = chooser.choice(_PORTS)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    return free_port()
