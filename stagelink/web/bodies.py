"""Reading request bodies with a size limit, before anything parses them."""

from __future__ import annotations

from fastapi import Request

__all__ = ["BodyTooLarge", "read_limited"]


class BodyTooLarge(Exception):
    """The body is over the limit; ``detail`` says how we know (for the log)."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


async def read_limited(request: Request, limit: int) -> bytes:
    """The whole body, or :class:`BodyTooLarge` as soon as it passes ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(f"body declared {declared} bytes")
    chunks: list[bytes] = []
    size = 0
    # Content-Length may be absent (chunked) or wrong: count what actually arrives.
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(f"body over {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)
