"""Run an ASGI app with uvicorn on a background thread, on a free port of 127.0.0.1."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from pathlib import Path
from typing import Any

import uvicorn


class BackgroundServer:
    """A real HTTP(S) server for an emulator, started and stopped from Python.

    ``port=0`` picks a free port; the chosen port is known once ``start()`` returns.
    """

    def __init__(
        self,
        app: Any,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        ssl_certfile: Path | None = None,
        ssl_keyfile: Path | None = None,
    ) -> None:
        self.host = host
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Accepted sockets inherit this; without it every kept-alive request waits ~40 ms
        # for Nagle + delayed ACK.
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock.bind((host, port))
        self.port: int = self._sock.getsockname()[1]
        self.scheme = "https" if ssl_certfile else "http"
        config = uvicorn.Config(
            app,
            log_level="critical",
            access_log=False,
            ssl_certfile=str(ssl_certfile) if ssl_certfile else None,
            ssl_keyfile=str(ssl_keyfile) if ssl_keyfile else None,
            timeout_keep_alive=30,
            # One event loop thread: emulators keep state behind a lock and answer fast.
            loop="asyncio",
            http="h11",
            lifespan="off",
        )
        self._server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Base URL without a trailing slash, e.g. ``https://127.0.0.1:54321``."""
        return f"{self.scheme}://{self.host}:{self.port}"

    def start(self, timeout: float = 10.0) -> None:
        """Start serving; returns once the server accepts connections."""
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [self._sock]},
            name=f"sandbox-server-{self.port}",
            daemon=True,
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError(f"sandbox server on {self.url} did not start")
            time.sleep(0.01)

    def stop(self, timeout: float = 10.0, grace_seconds: float = 0.25) -> None:
        """Stop serving and wait for the thread to end.

        A graceful close of an idle TLS connection waits for the client's close_notify,
        which a pooled ``requests`` connection never sends; after ``grace_seconds`` the
        remaining connections are aborted so stopping never hangs until ``timeout``.
        """
        self._server.should_exit = True
        if self._thread is not None and self._thread.is_alive():
            self._thread.join(grace_seconds)
            state = getattr(self._server, "server_state", None)
            for connection in list(getattr(state, "connections", ())):
                transport = getattr(connection, "transport", None)
                loop = getattr(connection, "loop", None)
                if transport is not None and loop is not None and not loop.is_closed():
                    with contextlib.suppress(RuntimeError):
                        loop.call_soon_threadsafe(transport.abort)
            self._thread.join(timeout)
        self._sock.close()

    def serve_forever(self) -> None:
        """Block the calling thread until Ctrl-C (used by ``stagelink sandbox``)."""
        try:
            while self._thread is not None and self._thread.is_alive():
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()
