"""Read the next batch from the CRM while the current one is being written.

A sync alternates between waiting for the CRM (network, JSON parsing, conversion) and
writing to the database; running the connector's generator in a helper thread overlaps the
two. Batches still arrive in order and are committed one by one with their positions, so
resuming is unchanged: a prefetched batch that was never committed is simply read again.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Generic, TypeVar

T = TypeVar("T")

__all__ = ["prefetched"]


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
