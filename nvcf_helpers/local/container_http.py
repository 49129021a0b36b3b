"""The worker's HTTP/1.1 client to its container, on asyncio protocols and httptools.

aiohttp's client took about 200 µs of the gateway's CPU per call on the
2-core machines we measure on; this one takes a fraction of that
(``benchmarks/local.py``). It does only what the worker needs: a POST of a
body held in memory, on a keep-alive connection from a pool per container,
and the answer's head, then its body in pieces with back-pressure.

Its failures are its own exceptions beside :class:`OSError`;
:func:`nvcf_helpers.local.exchange.failure` turns each into the problem
NVCF's worker answers with (facts §2).
"""

from __future__ import annotations

import asyncio
import collections
from typing import Any

import httptools

__all__ = [
    "MAX_RESPONSE_HEADERS",
    "MAX_RESPONSE_HEAD_BYTES",
    "ContainerClient",
    "ContainerClosed",
    "ContainerReply",
    "HeadTooLarge",
    "NotHttp",
]

#: NVCF's gateway relays a container's response head of at most 64 headers in
#: 8 KiB + 400 KiB (hyper's header buffer); larger heads never reach the caller.
MAX_RESPONSE_HEADERS = 64
MAX_RESPONSE_HEAD_BYTES = 8192 + 4096 * 100
# Bytes read before the head is complete that mean it never will be (a guard on memory;
# the exact limit is counted header by header).
_HEAD_GUARD_BYTES = 2 * MAX_RESPONSE_HEAD_BYTES
# A body buffered past this pauses reading until the reader has taken it below the low mark.
_HIGH_WATER = 1 << 20
_LOW_WATER = 1 << 18
# A request body larger than this is written in pieces of this size, waiting for the socket.
_WRITE_PIECE = 1 << 20


class HeadTooLarge(Exception):
    """The container's response head is larger than NVCF's gateway relays."""


class ContainerClosed(Exception):
    """The container closed the connection before its answer was complete (Go reads EOF)."""


class NotHttp(Exception):
    """The container answered with something that is not HTTP/1.x."""


class ContainerReply:
    """The container's answer: its status and headers at once, its body as it arrives.

    Attributes:
        status: the status code.
        headers: the headers as received, in order (names and values decoded
            as UTF-8, undecodable bytes kept as surrogates).
        content_length: the ``Content-Length`` it announced, if any.
    """

    __slots__ = (
        "_chunks",
        "_connection",
        "_done",
        "_error",
        "_held",
        "_waiter",
        "content_length",
        "headers",
        "status",
    )

    def __init__(
        self,
        connection: _Connection,
        status: int,
        headers: list[tuple[str, str]],
        content_length: int | None,
    ) -> None:
        self.status = status
        self.headers = headers
        self.content_length = content_length
        self._connection = connection
        self._chunks: collections.deque[bytes] = collections.deque()
        self._held = 0
        self._done = False
        self._error: BaseException | None = None
        self._waiter: asyncio.Future[None] | None = None

    async def read_chunk(self) -> bytes:
        """The next piece of the body; ``b""`` once it is complete.

        Raises:
            OSError, ContainerClosed, NotHttp: the answer broke off.
        """
        while not self._chunks:
            if self._error is not None:
                raise self._error
            if self._done:
                return b""
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        chunk = self._chunks.popleft()
        self._held -= len(chunk)
        if self._held < _LOW_WATER:
            self._connection.resume()
        return chunk

    async def read(self) -> bytes:
        """The whole body."""
        if self._done and self._error is None:
            data = b"".join(self._chunks)
            self._chunks.clear()
            self._held = 0
            self._connection.resume()
            return data
        pieces = []
        while chunk := await self.read_chunk():
            pieces.append(chunk)
        return b"".join(pieces)

    @property
    def complete(self) -> bool:
        """The whole body arrived and was read."""
        return self._done and not self._chunks and self._error is None

    # -- fed by the connection ---------------------------------------------------------------

    def _feed(self, data: bytes) -> None:
        self._chunks.append(data)
        self._held += len(data)
        if self._held > _HIGH_WATER:
            self._connection.pause()
        self._wake()

    def _finish(self) -> None:
        self._done = True
        self._wake()

    def _fail(self, error: BaseException) -> None:
        if not self._done and self._error is None:
            self._error = error
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


class _Connection(asyncio.Protocol):
    """One keep-alive connection to the container, one exchange at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.closed = False
        self.keep_alive = False
        self._head: asyncio.Future[ContainerReply] | None = None
        self._reply: ContainerReply | None = None
        self._headers: list[tuple[str, str]] = []
        self._head_size = 0
        self._in_head = False
        self._head_bytes = 0
        self._interim = False
        self._until_close = False
        self._paused = False
        self._drained: asyncio.Future[None] | None = None
        #: The whole request body went out (a container that answered early may not read it).
        self.sent_all = True

    # -- the exchange --------------------------------------------------------------------------

    async def exchange(self, head: bytes, body: bytes) -> ContainerReply:
        """Send the request; its answer once the head is in.

        A container may answer before it has read a large body (a 413, say):
        the answer is taken as it comes, the rest of the body is not sent,
        and the connection is then not reused.
        """
        transport = self.transport
        assert transport is not None
        answer: asyncio.Future[ContainerReply] = asyncio.get_running_loop().create_future()
        self._head = answer
        self._reply = None
        self.sent_all = True
        try:
            if len(body) <= _WRITE_PIECE:
                transport.write(head + body)
            else:
                await self._write_pieces(transport, head, body, answer)
            return await answer
        except BaseException:
            if not answer.done():
                answer.cancel()
            elif not answer.cancelled():
                answer.exception()  # seen here: not "never retrieved"
            raise

    async def _write_pieces(
        self,
        transport: asyncio.Transport,
        head: bytes,
        body: bytes,
        answer: asyncio.Future[ContainerReply],
    ) -> None:
        transport.write(head)
        view = memoryview(body)
        for start in range(0, len(body), _WRITE_PIECE):
            drained = self._drained
            if drained is not None:
                await asyncio.wait((answer, drained), return_when=asyncio.FIRST_COMPLETED)
            if answer.done() or self.closed:
                self.sent_all = False  # answered early, or gone: the answer tells which
                return
            transport.write(view[start : start + _WRITE_PIECE])

    def usable(self) -> bool:
        """Open, idle, reading and free to carry another request."""
        return (
            not self.closed
            and not self._paused
            and self.transport is not None
            and not self.transport.is_closing()
        )

    def abort(self) -> None:
        """Drop the connection at once (a cancelled or broken exchange, or closing).

        An answer still arriving fails: cut off here, it must not look complete.
        """
        self.closed = True
        self._fail(ContainerClosed("the local NVCF closed the connection to the container"))
        if self.transport is not None:
            self.transport.abort()

    def _fail(self, error: BaseException) -> None:
        head, reply = self._head, self._reply
        if reply is not None:
            reply._fail(error)
        elif head is not None and not head.done():
            head.set_exception(error)

    def pause(self) -> None:
        if not self._paused and self.transport is not None:
            self._paused = True
            self.transport.pause_reading()

    def resume(self) -> None:
        if self._paused and self.transport is not None and not self.closed:
            self._paused = False
            self.transport.resume_reading()

    # -- asyncio's protocol ----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no subclass

    def data_received(self, data: bytes) -> None:
        if self._in_head or self._reply is None:
            self._head_bytes += len(data)
            if self._head_bytes > _HEAD_GUARD_BYTES:
                self._broken(HeadTooLarge(f"more than {_HEAD_GUARD_BYTES} bytes of head"))
                return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserCallbackError as exc:
            cause = exc.__context__
            if isinstance(cause, (HeadTooLarge, NotHttp)):
                self._broken(cause)
            else:
                self._broken(NotHttp(str(exc)))
        except httptools.HttpParserUpgrade:
            self._broken(NotHttp("the container switched protocols"))
        except httptools.HttpParserError as exc:
            self._broken(NotHttp(str(exc) or type(exc).__name__))

    def eof_received(self) -> bool:
        return False  # close: connection_lost tells whether the answer was complete

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        reply = self._reply
        if reply is not None and not reply._done and reply._error is None:
            if exc is None and self._until_close:
                reply._finish()  # a body delimited by the end of the connection
                return
            reply._fail(
                exc or ContainerClosed("it closed the connection in the middle of its body")
            )
        elif self._head is not None and not self._head.done():
            self._head.set_exception(
                exc or ContainerClosed("it closed the connection without answering")
            )
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)

    def pause_writing(self) -> None:
        self._drained = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        drained, self._drained = self._drained, None
        if drained is not None and not drained.done():
            drained.set_result(None)

    # -- httptools' callbacks ------------------------------------------------------------------

    def on_message_begin(self) -> None:
        self._in_head = True
        self._headers = []
        self._head_size = 0

    def on_status(self, status: bytes) -> None:
        self._head_size += len(status)
        if self._head_size > MAX_RESPONSE_HEAD_BYTES:
            raise HeadTooLarge(f"a status line of more than {MAX_RESPONSE_HEAD_BYTES} bytes")

    def on_header(self, name: bytes, value: bytes) -> None:
        if not self._in_head:
            return  # a trailer after a chunked body: NVCF's worker relays none
        headers = self._headers
        self._head_size += len(name) + len(value) + 4
        if len(headers) >= MAX_RESPONSE_HEADERS:
            raise HeadTooLarge(f"more than {MAX_RESPONSE_HEADERS} headers")
        if self._head_size > MAX_RESPONSE_HEAD_BYTES:
            raise HeadTooLarge(f"more than {MAX_RESPONSE_HEAD_BYTES} bytes of headers")
        headers.append(
            (name.decode("utf-8", "surrogateescape"), value.decode("utf-8", "surrogateescape"))
        )

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._head_bytes = 0
        status = self.parser.get_status_code()
        if 100 <= status < 200:
            self._interim = True  # 100 Continue and the like: the answer comes next
            return
        length: int | None = None
        chunked = False
        for name, value in self._headers:
            lowered = name.lower()
            if lowered == "content-length":
                length = int(value) if value.strip().isdigit() else None
            elif lowered == "transfer-encoding":
                if value.rsplit(",", 1)[-1].strip().lower() != "chunked":
                    # Go's client refuses these too: "unsupported transfer encoding".
                    raise NotHttp(f"unsupported transfer encoding {value!r}")
                chunked = True
        self.keep_alive = self.parser.should_keep_alive()
        self._until_close = length is None and not chunked and status not in (204, 304)
        reply = ContainerReply(self, status, self._headers, length)
        self._reply = reply
        head = self._head
        if head is not None and not head.done():
            head.set_result(reply)

    def on_body(self, body: bytes) -> None:
        if not self._interim and self._reply is not None:
            self._reply._feed(body)

    def on_message_complete(self) -> None:
        if self._interim:
            self._interim = False
            return
        if self._reply is not None:
            self._reply._finish()

    def _broken(self, error: BaseException) -> None:
        self._fail(error)
        self.abort()


class _Call:
    """``async with client.post(...) as reply``: the connection goes back to the pool
    only after a complete, keep-alive answer was read; otherwise it is closed."""

    __slots__ = ("_body", "_client", "_connection", "_head")

    def __init__(self, client: ContainerClient, head: bytes, body: bytes) -> None:
        self._client = client
        self._head = head
        self._body = body
        self._connection: _Connection | None = None

    async def __aenter__(self) -> ContainerReply:
        connection = await self._client._connection()
        self._connection = connection
        try:
            return await connection.exchange(self._head, self._body)
        except BaseException:
            self._client._drop(connection)
            raise

    async def __aexit__(self, *exc_info: Any) -> None:
        connection = self._connection
        assert connection is not None
        reply = connection._reply
        if (
            exc_info[0] is None
            and reply is not None
            and reply.complete
            and connection.keep_alive
            and connection.sent_all
            and connection.usable()
            and not self._client._closed
        ):
            self._client._idle.append(connection)
        else:
            self._client._drop(connection)


class ContainerClient:
    """POSTs to one container endpoint over a pool of keep-alive connections.

    Args:
        host: the container's address.
        port: its port.
        path: the request target, e.g. ``/v2/models/echo/infer``.
    """

    def __init__(self, host: str, port: int, path: str) -> None:
        self.host = host
        self.port = port
        self.path = path
        self._start = f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
        self._idle: list[_Connection] = []
        self._open: set[_Connection] = set()
        self._closed = False

    def post(self, headers: list[tuple[str, str]], body: bytes) -> _Call:
        """A POST of ``body`` with ``headers`` (plus ``Host`` and ``Content-Length``).

        Raises:
            ValueError: a header name or value holds a line break.
        """
        lines = [self._start]
        for name, value in headers:
            lines.append(f"{name}: {value}\r\n")
        lines.append(f"Content-Length: {len(body)}\r\n\r\n")
        head = "".join(lines)
        breaks = len(headers) + 4
        if head.count("\n") != breaks or head.count("\r") != breaks or "\0" in head:
            raise ValueError("a header sent to the container holds a line break or a NUL")
        return _Call(self, head.encode("utf-8", "surrogateescape"), body)

    async def close(self) -> None:
        """Close every connection, idle or busy (their exchanges fail)."""
        self._closed = True
        for connection in list(self._open):
            connection.abort()
        self._open.clear()
        self._idle.clear()

    async def _connection(self) -> _Connection:
        idle = self._idle
        while idle:
            connection = idle.pop()
            if connection.usable():
                return connection
            self._open.discard(connection)
        if self._closed:
            raise ContainerClosed("the local NVCF closed its connections to the container")
        loop = asyncio.get_running_loop()
        _, connection = await loop.create_connection(_Connection, self.host, self.port)
        if self._closed:  # closed while connecting
            connection.abort()
            raise ContainerClosed("the local NVCF closed its connections to the container")
        self._open.add(connection)
        return connection

    def _drop(self, connection: _Connection) -> None:
        connection.abort()
        self._open.discard(connection)
