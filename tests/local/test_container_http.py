"""The worker's HTTP/1.1 client to the container, against scripted servers on real sockets.

Each server reads one request at a time (head and ``Content-Length`` body)
and writes the raw bytes a test gives it, so every way an answer can be
framed, broken or oversized reaches the client as it would from a container.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import Awaitable, Callable

import pytest

from nvcf_helpers.local.container_http import (
    MAX_RESPONSE_HEAD_BYTES,
    MAX_RESPONSE_HEADERS,
    ContainerClient,
    ContainerClosed,
    HeadTooLarge,
    NotHttp,
)
from nvcf_helpers.local.exchange import CONNECTION_ERROR, failure

Answer = Callable[[bytes, asyncio.StreamWriter], Awaitable[bool]]


class Scripted:
    """A server that answers each request with ``answer(request, writer)``.

    ``answer`` returns whether to keep the connection for another request.
    """

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.connections = 0
        self.requests: list[bytes] = []
        self.closed = asyncio.Event()
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> ContainerClient:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        self.client = ContainerClient("127.0.0.1", port, "/infer")
        return self.client

    async def __aexit__(self, *exc: object) -> None:
        await self.client.close()
        assert self.server is not None
        self.server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    int(line.split(b":", 1)[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                request = head + await reader.readexactly(length)
                self.requests.append(request)
                if not await self.answer(request, writer):
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self.closed.set()
            writer.close()


def answer_with(raw: bytes, *, keep: bool = True) -> Answer:
    async def answer(request: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(raw)
        await writer.drain()
        return keep

    return answer


def echo(request: bytes, *, extra: bytes = b"") -> bytes:
    body = request.split(b"\r\n\r\n", 1)[1]
    return (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        + extra
        + b"Content-Length: %d\r\n\r\n" % len(body)
        + body
    )


async def post(client: ContainerClient, body: bytes = b'{"x": 1}') -> tuple[int, bytes]:
    async with client.post([("Content-Type", "application/json")], body) as reply:
        return reply.status, await reply.read()


def run(test: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(test(), 20))


def test_keep_alive_connections_are_reused_and_the_request_is_as_sent() -> None:
    async def answer(request: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(echo(request))
        return True

    async def test() -> None:
        server = Scripted(answer)
        async with server as client:
            async with client.post(
                [("Content-Type", "application/json"), ("Nvcf-Reqid", "r-1")], b'{"a": 1}'
            ) as reply:
                assert (reply.status, await reply.read()) == (200, b'{"a": 1}')
                assert ("Content-Type", "application/json") in reply.headers
                assert reply.content_length == 8
            assert await post(client, b'{"b": 2}') == (200, b'{"b": 2}')
        assert server.connections == 1
        assert server.requests[0] == (
            b"POST /infer HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
            b"Content-Type: application/json\r\nNvcf-Reqid: r-1\r\n"
            b'Content-Length: 8\r\n\r\n{"a": 1}' % client.port
        )

    run(test)


def test_a_connection_the_container_closes_is_not_reused() -> None:
    async def answer(request: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(echo(request, extra=b"Connection: close\r\n"))
        await writer.drain()
        return False

    async def test() -> None:
        server = Scripted(answer)
        async with server as client:
            assert await post(client) == (200, b'{"x": 1}')
            assert await post(client) == (200, b'{"x": 1}')
        assert server.connections == 2

    run(test)


@pytest.mark.parametrize(
    ("raw", "body"),
    [
        pytest.param(
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
            b"ok",
            id="interim-100-then-the-answer",
        ),
        pytest.param(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n",
            b"abcdefg",
            id="chunked",
        ),
        pytest.param(b"HTTP/1.0 200 OK\r\n\r\nuntil the end", b"until the end", id="until-close"),
        pytest.param(b"HTTP/1.1 204 No Content\r\n\r\n", b"", id="no-content"),
    ],
)
def test_every_framing_of_a_body(raw: bytes, body: bytes) -> None:
    async def test() -> None:
        async with Scripted(answer_with(raw, keep=b"until" not in raw)) as client:
            status, got = await post(client)
            assert got == body
            assert status in (200, 204)

    run(test)


def test_a_large_body_arrives_whole_in_pieces() -> None:
    payload = bytes(range(256)) * (12 * 4096)  # 12 MiB: more than the pause mark

    async def test() -> None:
        raw = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(payload) + payload
        async with Scripted(answer_with(raw)) as client:
            async with client.post([], b"{}") as reply:
                pieces = []
                while chunk := await reply.read_chunk():
                    pieces.append(chunk)
                    await asyncio.sleep(0)  # a slow reader: the socket is paused meanwhile
            assert b"".join(pieces) == payload
            assert len(pieces) > 1

    run(test)


def test_a_large_request_body_is_sent_whole() -> None:
    payload = b"x" * (5 * 1024 * 1024 + 3)

    async def answer(request: bytes, writer: asyncio.StreamWriter) -> bool:
        body = request.split(b"\r\n\r\n", 1)[1]
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%d" % (len(str(len(body))), len(body))
        )
        return True

    async def test() -> None:
        async with Scripted(answer) as client:
            assert await post(client, payload) == (200, str(len(payload)).encode())

    run(test)


@pytest.mark.parametrize(
    ("raw", "error", "words"),
    [
        pytest.param(b"", ContainerClosed, "without answering", id="closed-before-answering"),
        pytest.param(
            b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc",
            ContainerClosed,
            "in the middle of its body",
            id="closed-mid-body",
        ),
        pytest.param(b"SSH-2.0-OpenSSH_9.2\r\n\r\n", NotHttp, "Expected HTTP/", id="not-http"),
        pytest.param(
            b"HTTP/1.1 200 OK\r\n"
            + b"".join(b"X-%d: v\r\n" % index for index in range(MAX_RESPONSE_HEADERS + 1))
            + b"Content-Length: 0\r\n\r\n",
            HeadTooLarge,
            f"more than {MAX_RESPONSE_HEADERS} headers",
            id="too-many-headers",
        ),
        pytest.param(
            b"HTTP/1.1 200 OK\r\nX-Big: "
            + b"a" * MAX_RESPONSE_HEAD_BYTES
            + b"\r\nContent-Length: 0\r\n\r\n",
            HeadTooLarge,
            "bytes of headers",
            id="header-too-large",
        ),
        pytest.param(
            b"HTTP/1.1 200 OK\r\nX-Endless: " + b"a" * (3 * MAX_RESPONSE_HEAD_BYTES),
            HeadTooLarge,
            "bytes of head",
            id="head-without-end",
        ),
    ],
)
def test_broken_answers_raise_what_the_worker_classifies(
    raw: bytes, error: type[Exception], words: str
) -> None:
    async def test() -> None:
        async with Scripted(answer_with(raw, keep=False)) as client:
            with pytest.raises(error, match=words):
                await post(client)
            assert not client._idle  # a broken connection is never reused

    run(test)


def test_a_line_break_in_a_header_is_refused_before_sending() -> None:
    async def test() -> None:
        server = Scripted(answer_with(b""))
        async with server as client:
            with pytest.raises(ValueError, match="line break"):
                client.post([("X-Injected", "a\r\nX-Other: b")], b"{}")
        assert server.requests == []

    run(test)


def test_cancelling_an_exchange_closes_its_connection() -> None:
    async def answer(request: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npart")
        await writer.drain()
        return True  # and never the rest

    async def test() -> None:
        server = Scripted(answer)
        async with server as client:
            call = asyncio.ensure_future(post(client))
            await asyncio.sleep(0.2)
            call.cancel()
            with pytest.raises(asyncio.CancelledError):
                await call
            await asyncio.wait_for(server.closed.wait(), 5)
            assert not client._idle

    run(test)


def test_close_drops_idle_connections() -> None:
    async def test() -> None:
        server = Scripted(lambda request, writer: answer_with(echo(request))(request, writer))
        async with server as client:
            await post(client)
            assert len(client._idle) == 1
            await client.close()
            await asyncio.wait_for(server.closed.wait(), 5)
            with pytest.raises(ContainerClosed, match="closed its connections"):
                await post(client)

    run(test)


# -- found in review: each pinned ---------------------------------------------------------------


def test_an_early_answer_to_a_large_upload_is_taken_and_the_connection_dropped() -> None:
    async def refuse_unread(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")  # the head only: the body is never read
        writer.write(b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 8\r\n\r\ntoo big!")
        await writer.drain()
        await asyncio.sleep(5)
        writer.close()

    async def test() -> None:
        server = await asyncio.start_server(refuse_unread, "127.0.0.1", 0)
        client = ContainerClient("127.0.0.1", server.sockets[0].getsockname()[1], "/infer")
        try:
            began = asyncio.get_running_loop().time()
            assert await post(client, b"x" * (64 * 1024 * 1024)) == (413, b"too big!")
            assert asyncio.get_running_loop().time() - began < 3
            assert not client._idle  # the rest of the body was never sent: not reusable
        finally:
            await client.close()
            server.close()

    run(test)


def test_trailers_are_not_headers() -> None:
    raw = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: Content-Type\r\n\r\n"
        b"3\r\nabc\r\n0\r\nContent-Type: text/evil\r\n\r\n"
    )

    async def test() -> None:
        async with Scripted(answer_with(raw)) as client:
            async with client.post([], b"{}") as reply:
                assert await reply.read() == b"abc"
                assert ("Content-Type", "text/evil") not in reply.headers
            assert len(client._idle) == 1

    run(test)


def test_a_reset_mid_body_is_a_connection_error_as_go_reports_it() -> None:
    """Go's body read returns a *net.OpError: work.go's handleInferenceError says connection."""

    async def reset(request: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npart")
        await writer.drain()
        await asyncio.sleep(0.1)
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()
        return False

    async def test() -> None:
        async with Scripted(reset) as client:
            with pytest.raises(ConnectionResetError) as caught:
                await post(client)
            assert failure(caught.value)[0] == CONNECTION_ERROR

    run(test)


def test_a_whole_body_over_the_pause_mark_leaves_the_connection_reading() -> None:
    payload = b"y" * ((1 << 20) + 100_000)
    raw = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(payload) + payload

    async def test() -> None:
        server = Scripted(answer_with(raw))
        async with server as client:
            async with client.post([], b"{}") as reply:
                await asyncio.sleep(0.2)  # all of it arrives first: reading is paused
                assert await reply.read() == payload
            assert await post(client) == (200, payload)  # the reused connection reads again
        assert server.connections == 1

    run(test)


def test_closing_while_connecting_leaves_nothing_open() -> None:
    async def test() -> None:
        server = Scripted(answer_with(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
        async with server as client:
            call = asyncio.ensure_future(post(client))
            await asyncio.sleep(0)  # inside create_connection
            await client.close()
            with pytest.raises(ContainerClosed):
                await call
            assert not client._idle
            assert not client._open

    run(test)


def test_closing_cuts_a_body_that_ends_with_the_connection() -> None:
    async def endless(request: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"HTTP/1.0 200 OK\r\n\r\nstream")
        await writer.drain()
        await asyncio.sleep(5)
        return False

    async def test() -> None:
        async with Scripted(endless) as client, client.post([], b"{}") as reply:
            assert await reply.read_chunk() == b"stream"
            await client.close()
            with pytest.raises(ContainerClosed, match="closed the connection"):
                await reply.read_chunk()
            assert not reply.complete

    run(test)


@pytest.mark.parametrize(
    ("raw", "error", "words"),
    [
        pytest.param(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: identity\r\n\r\nbody",
            NotHttp,
            "unsupported transfer encoding 'identity'",
            id="transfer-encoding-not-chunked",
        ),
        pytest.param(
            b"HTTP/1.1 200 " + b"k" * (MAX_RESPONSE_HEAD_BYTES + 1) + b"\r\n\r\n",
            HeadTooLarge,
            "status line",
            id="status-line-too-long",
        ),
    ],
)
def test_more_answers_go_refuses(raw: bytes, error: type[Exception], words: str) -> None:
    async def test() -> None:
        async with Scripted(answer_with(raw, keep=False)) as client:
            with pytest.raises(error, match=words):
                await post(client)

    run(test)


@pytest.mark.parametrize("value", ["a\rb", "a\0b"])
def test_a_carriage_return_or_nul_in_a_header_is_refused(value: str) -> None:
    async def test() -> None:
        async with Scripted(answer_with(b"")) as client:
            with pytest.raises(ValueError, match="line break or a NUL"):
                client.post([("X-Bad", value)], b"{}")

    run(test)
