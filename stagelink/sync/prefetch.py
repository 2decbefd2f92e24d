"""Overlap reading a sync's next batch with writing the current one.

A sync alternates between waiting for the CRM (network, JSON parsing, conversion) and
writing to the database. :func:`prefetched` runs the connector's generator in a helper
thread; :class:`HelperProcess` runs the database writes in a helper process, for when both
sides are CPU-bound and one interpreter lock would serialise them. Batches still arrive
in order and are committed one by one with their positions, so resuming is unchanged: a
batch read ahead that was never committed is simply read again.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import pickle
import queue
import signal
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from multiprocessing.connection import Connection
from typing import Any, Generic, TypeVar, cast

T = TypeVar("T")
S = TypeVar("S")
W = TypeVar("W")
R = TypeVar("R")

__all__ = [
    "HelperProcess",
    "HelperProcessError",
    "HelperSetupError",
    "fewer_collections",
    "prefetched",
]

#: Allocations between two young-generation garbage collections while a sync runs (Python's
#: default is 700). A sync allocates millions of short-lived dicts and rows that plain
#: reference counting frees; with the default, the collector's passes over everything alive
#: took a fifth of a full sync's time.
SYNC_GC_THRESHOLD = 50_000

_gc_lock = threading.Lock()
_gc_users = 0
_gc_saved: tuple[int, int, int] = gc.get_threshold()


class _End:
    pass


_END = _End()


class _Failure:
    def __init__(self, error: BaseException) -> None:
        self.error = error


class _Producer(Generic[T]):
    def __init__(self, source: Iterator[T], depth: int) -> None:
        self.source = source
        self.items: queue.Queue[T | _End | _Failure] = queue.Queue(maxsize=depth)
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name="sync-prefetch", daemon=True)

    def _run(self) -> None:
        try:
            for item in self.source:
                if not self._put(item):
                    return
            self._put(_END)
        except BaseException as exc:  # handed to the consumer, which re-raises it
            self._put(_Failure(exc))
        finally:
            close = getattr(self.source, "close", None)
            if close is not None:
                close()

    def _put(self, item: T | _End | _Failure) -> bool:
        while not self.stopping.is_set():
            try:
                self.items.put(item, timeout=0.1)
            except queue.Full:
                continue
            return True
        return False

    def __iter__(self) -> Iterator[T]:
        while True:
            item = self.items.get()
            if isinstance(item, _End):
                return
            if isinstance(item, _Failure):
                raise item.error
            yield item


@contextmanager
def prefetched(source: Iterator[T], *, depth: int = 1) -> Iterator[Iterator[T]]:
    """Iterate ``source`` in a helper thread, at most ``depth`` items ahead of the consumer.

    Errors raised by ``source`` are re-raised in the consumer at the point they occurred.
    Leaving the block early stops the helper after the item it is producing.
    """
    producer = _Producer(source, depth)
    producer.thread.start()
    try:
        yield iter(producer)
    finally:
        producer.stopping.set()
        producer.thread.join(timeout=60)


@contextmanager
def fewer_collections() -> Iterator[None]:
    """Raise the garbage collector's first threshold to :data:`SYNC_GC_THRESHOLD` inside
    the block (process-wide, so nested and concurrent blocks share one setting; the last one
    out restores what was there). Only cyclic garbage waits longer to be collected."""
    global _gc_users, _gc_saved
    with _gc_lock:
        if _gc_users == 0:
            _gc_saved = gc.get_threshold()
            gc.set_threshold(max(SYNC_GC_THRESHOLD, _gc_saved[0]), *_gc_saved[1:])
        _gc_users += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_users -= 1
            if _gc_users == 0:
                gc.set_threshold(*_gc_saved)


# -- a helper process ------------------------------------------------------------------------


class HelperProcessError(RuntimeError):
    """The helper process failed in a way that left no exception to re-raise."""


class HelperSetupError(HelperProcessError):
    """The helper process could not run ``setup``: none of the work sent to it ran."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(f"the helper process could not start: {error}")
        self.error = error


class HelperProcess(Generic[W, R]):
    """Runs ``step(state, work)`` for each submitted ``work``, in order, in a child Python
    process whose ``state = setup(argument)``; results come back in order too.

    Python threads share one interpreter lock, so a CPU-bound consumer cannot overlap with a
    CPU-bound producer in one process; this is the two-core version of :func:`prefetched`.
    ``setup`` and ``step`` must be module-level functions and everything sent must pickle.

    * The child starts in the background: work can be submitted at once. If ``setup`` fails,
      the first wait for a result raises :class:`HelperSetupError` and none of it ran;
      :meth:`ready` waits for ``setup`` and says whether it worked.
    * At most ``depth`` works are in flight: ``submit`` waits for the oldest result beyond.
    * A failed ``step`` sends its exception back; it is raised by the next
      ``submit``/``poll``/``drain``, and nothing submitted after it runs.
    * The child ignores Ctrl-C (the parent decides when to stop) and runs no work once its
      parent is gone (``kill -9``); :meth:`close` lets it finish, :meth:`kill` does not.
    """

    def __init__(
        self,
        setup: Callable[[Any], S],
        argument: Any,
        step: Callable[[S, W], R],
        *,
        depth: int = 3,
    ) -> None:
        ours, theirs = multiprocessing.Pipe()
        code = "import sys; from stagelink.sync.prefetch import _serve; _serve(int(sys.argv[1]))"
        self._process = subprocess.Popen(
            [sys.executable, "-c", code, str(theirs.fileno())],
            pass_fds=(theirs.fileno(),),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,  # stdout may be the parent's --json output
        )
        theirs.close()
        self._connection = ours
        self._depth = depth
        self._waiting: deque[Callable[[R], None]] = deque()
        self._ready: bool | None = None
        #: Why ``setup`` failed, when :meth:`ready` says it did.
        self.setup_error: BaseException | None = None
        self._failed = False
        # The sender thread writes while this thread goes on: a send blocks until the child
        # reads, and the child reads only between works.
        self._outbox: queue.Queue[bytes | None] = queue.Queue()
        self._sender = threading.Thread(target=self._send_all, name="helper-send", daemon=True)
        self._sender.start()
        self._put(list(sys.path))  # so the child imports what this process imports
        self._put((setup, argument, step))

    def ready(self, *, wait: bool = True) -> bool | None:
        """Whether the child ran ``setup`` (``False``: it could not, see ``setup_error``);
        ``None`` while it is still starting, when not asked to ``wait``."""
        if self._ready is None and (wait or self._connection.poll(0)):
            try:
                kind, value = self._connection.recv()
            except (EOFError, OSError):
                code = self._process.poll()
                kind = "error"
                value = HelperProcessError(f"the helper process stopped (exit code {code})")
            self._ready = kind == "ready"
            if not self._ready:
                self.setup_error = value
                self._failed = True
        return self._ready

    def submit(self, work: W, done: Callable[[R], None]) -> None:
        """Run ``work`` after the ones before it; ``done(result)`` is called by a later
        ``submit``, ``poll`` or ``drain`` of this thread."""
        if self._failed:
            raise HelperProcessError("the helper process failed earlier")
        while len(self._waiting) >= self._depth:
            self._receive()
        self._put(work)
        self._waiting.append(done)

    def poll(self) -> None:
        """Deliver the results that are ready, without waiting."""
        while self._waiting and self._connection.poll(0):
            self._receive()

    def drain(self) -> None:
        """Wait until every submitted work has run and its result was delivered."""
        while self._waiting:
            self._receive()

    def close(self, timeout: float = 30.0) -> None:
        """Let the child finish what it has (see :meth:`drain`) and exit."""
        self._outbox.put(None)
        self._sender.join(timeout)
        if self._sender.is_alive():
            self.kill()  # stuck: the socket must not close under a running send
            return
        self._connection.close()
        try:
            self._process.wait(timeout)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()

    def kill(self) -> None:
        """Stop the child at once; a work it was running does not finish."""
        self._waiting.clear()
        self._failed = True
        self._process.kill()
        self._process.wait()
        self._outbox.put(None)
        self._sender.join()  # its send fails at once now; only then may the socket close
        self._connection.close()

    def _put(self, message: Any) -> None:
        self._outbox.put(pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL))

    def _send_all(self) -> None:
        while (data := self._outbox.get()) is not None:
            try:
                self._connection.send_bytes(data)
            except OSError:
                return  # the child is gone; the receiving side reports it

    def _receive(self) -> None:
        if not self.ready():
            self._waiting.clear()
            raise HelperSetupError(cast(BaseException, self.setup_error))
        try:
            kind, value = self._connection.recv()
        except (EOFError, OSError):
            self._failed = True
            self._waiting.clear()
            code = self._process.poll()
            raise HelperProcessError(
                f"the helper process stopped unexpectedly (exit code {code})"
            ) from None
        if kind == "error":
            self._failed = True
            self._waiting.clear()
            raise value
        self._waiting.popleft()(value)


def _serve(handle: int) -> None:
    """The child side of :class:`HelperProcess`."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    gc.set_threshold(SYNC_GC_THRESHOLD, *gc.get_threshold()[1:])  # see SYNC_GC_THRESHOLD
    connection = Connection(handle)
    parent = os.getppid()
    try:
        sys.path[:] = pickle.loads(connection.recv_bytes())
        setup, argument, step = pickle.loads(connection.recv_bytes())
    except EOFError:
        return
    try:
        state = setup(argument)
    except BaseException as exc:
        _send_error(connection, exc)
        return
    connection.send(("ready", None))
    while True:
        try:
            work = pickle.loads(connection.recv_bytes())
        except EOFError:
            return
        if os.getppid() != parent:
            return  # orphaned: the parent was killed, its job is over
        try:
            result = step(state, work)
        except BaseException as exc:
            _send_error(connection, exc)
            return
        connection.send(("ok", result))


def _send_error(connection: Connection, error: BaseException) -> None:
    try:
        pickle.loads(pickle.dumps(error))  # some exceptions cannot be rebuilt from a pickle
        message: BaseException = error
    except Exception:
        message = HelperProcessError(f"{type(error).__name__}: {error}")
    try:
        connection.send(("error", message))
    except OSError:
        pass  # the parent is gone
