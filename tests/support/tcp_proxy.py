"""A TCP proxy a test puts between a process and a server (RabbitMQ) to cut the connection.

`ss -K` would cut every connection to the server on the machine, other tests' and other
programs' too; the proxy cuts only those that go through it. It runs an asyncio loop in a
thread of the test process.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from tests.support.processes import free_port

CHUNK = 65536
T = TypeVar("T")


class TcpProxy:
    """Forwards 127.0.0.1:`port` to `target`; `cut()` severs its connections and refuses new
    ones (accepted, then closed at once) until `restore()`."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self._target = (target_host, target_port)
        self.port = free_port()
        self._loop = asyncio.new_event_loop()
        self._writers: set[asyncio.StreamWriter] = set()
        self._refusing = False
        self._server: asyncio.Server | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def start(self) -> TcpProxy:
        self._thread.start()
        self._call(self._listen())
        return self

    def cut(self) -> int:
        """Close every connection through the proxy and refuse new ones; how many were cut."""
        return self._call(self._cut())

    def restore(self) -> None:
        """Accept and forward connections again."""
        self._refusing = False

    def close(self) -> None:
        self._call(self._cut())
        if self._server is not None:
            self._server.close()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    def _call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(10)

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._accepted, "127.0.0.1", self.port)

    async def _cut(self) -> int:
        self._refusing = True
        cut = len(self._writers)
        for writer in list(self._writers):
            # An abort, not a FIN: the peer sees the connection reset, as after a network cut.
            writer.transport.abort()
        self._writers.clear()
        return cut

    async def _accepted(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._refusing:
            writer.transport.abort()
            return
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self._target)
        except OSError:
            writer.transport.abort()
            return
        self._writers.update((writer, upstream_writer))
        await asyncio.gather(
            self._pipe(reader, upstream_writer), self._pipe(upstream_reader, writer)
        )

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while chunk := await reader.read(CHUNK):
                writer.write(chunk)
                await writer.drain()
        except OSError:
            pass  # the other side, or cut(), closed it
        finally:
            self._writers.discard(writer)
            with contextlib.suppress(OSError):
                writer.transport.abort()
