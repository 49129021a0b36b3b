"""The gRPC endpoint of the local NVCF, as NVCF's gRPC proxy and worker serve gRPC functions.

NVCF routes a gRPC call by its metadata (facts §7): ``authorization:
Bearer <key>`` (missing or wrong: UNAUTHENTICATED), ``function-id``
(missing: INVALID_ARGUMENT) and an optional ``function-version-id``; the
worker then relays the call over HTTP/2 to the container's
``inferencePort`` as a plain reverse proxy, adding no ``NVCF-*`` metadata.
Here every method of every service is relayed the same way, as raw bytes:
gRPC's four kinds of call look alike on the wire, so one streaming handler
serves unary and streaming calls, and the container's messages, metadata and
status come back as it sent them.
"""

from __future__ import annotations

import functools
import hmac
import logging
from collections.abc import AsyncIterator
from typing import Any

import grpc
from grpc import aio

from nvcf_helpers import names
from nvcf_helpers.local.cloud import LocalCloud
from nvcf_helpers.local.registry import RegistryError

__all__ = ["GrpcProxy"]

logger = logging.getLogger("nvcf_helpers.local")

# Metadata gRPC itself writes on each hop: never relayed as the caller's.
_TRANSPORT_KEYS = frozenset({"content-type", "te", "user-agent", "grpc-accept-encoding"})
_STATUS_OF_REGISTRY = {400: grpc.StatusCode.FAILED_PRECONDITION, 404: grpc.StatusCode.NOT_FOUND}


def _relayed(metadata: Any) -> list[tuple[str, str | bytes]]:
    """The caller's metadata as the container gets it (gRPC's own keys left to gRPC)."""
    return [
        (key, value)
        for key, value in metadata or ()
        if not key.startswith(":") and key not in _TRANSPORT_KEYS and not key.startswith("grpc-")
    ]


class _Relay(grpc.GenericRpcHandler):  # type: ignore[misc]
    def __init__(self, proxy: GrpcProxy) -> None:
        self.proxy = proxy

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler:
        return grpc.stream_stream_rpc_method_handler(
            functools.partial(self.proxy.relay, handler_call_details.method)
        )


class GrpcProxy:
    """A gRPC server that relays calls to the deployed gRPC functions' containers.

    Args:
        cloud: the local NVCF's functions and deployments.
        api_key: the bearer key callers must send, or ``None`` for none.
    """

    def __init__(self, cloud: LocalCloud, api_key: str | None) -> None:
        self.cloud = cloud
        self.api_key = api_key
        self.server: aio.Server | None = None
        self.port = 0
        self._channels: dict[int, aio.Channel] = {}
        self._methods: dict[tuple[int, str], Any] = {}

    async def start(self, host: str, port: int) -> int:
        """Listen on ``host:port`` (0: a free port); returns the port."""
        self.server = aio.server()
        self.server.add_generic_rpc_handlers((_Relay(self),))
        self.port = self.server.add_insecure_port(f"{host}:{port}")
        if self.port == 0:
            raise OSError(f"cannot listen for gRPC on {host}:{port}")
        await self.server.start()
        return self.port

    async def stop(self, grace: float = 1.0) -> None:
        """Stop listening; calls in flight get ``grace`` seconds."""
        if self.server is not None:
            await self.server.stop(grace)
        for channel in self._channels.values():
            await channel.close()
        self._channels.clear()
        self._methods.clear()

    def _route(self, context: Any) -> int:
        """The port of the instance a call goes to; aborts the call as NVCF would if none."""
        metadata = dict(context.invocation_metadata() or ())
        if self.api_key is not None:
            scheme, _, key = str(metadata.get("authorization", "")).partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(
                key.strip().encode(), self.api_key.encode()
            ):
                raise _Abort(
                    grpc.StatusCode.UNAUTHENTICATED,
                    "send metadata 'authorization: Bearer <key>' with the key nvcf-helpers "
                    "local was started with (--api-key)",
                )
        function_id = metadata.get(names.DIRECT_FUNCTION_ID)
        if not function_id:
            raise _Abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"metadata '{names.DIRECT_FUNCTION_ID}' is missing: send the id of the function "
                f"to call (and '{names.DIRECT_FUNCTION_VERSION_ID}' for one version)",
            )
        try:
            deployment = self.cloud.target(
                str(function_id), metadata.get(names.DIRECT_FUNCTION_VERSION_ID) or None
            )
        except RegistryError as exc:
            raise _Abort(
                _STATUS_OF_REGISTRY.get(exc.status, grpc.StatusCode.UNAVAILABLE), exc.detail
            ) from None
        return deployment.pick().state.spec.inference_port

    def _method(self, port: int, method: str) -> Any:
        """The container's ``method`` on ``port``, as a bytes-in, bytes-out stream."""
        callable_ = self._methods.get((port, method))
        if callable_ is None:
            channel = self._channels.get(port)
            if channel is None:
                channel = self._channels[port] = aio.insecure_channel(f"127.0.0.1:{port}")
            callable_ = self._methods[port, method] = channel.stream_stream(method)
        return callable_

    async def relay(self, method: str, requests: AsyncIterator[bytes], context: Any) -> None:
        """Relay one call: its messages both ways, then the container's status."""
        try:
            port = self._route(context)
        except _Abort as abort:
            await context.abort(abort.code, abort.details)
            return
        call = self._method(port, method)(
            requests,
            metadata=_relayed(context.invocation_metadata()),
            timeout=context.time_remaining(),
        )
        try:
            initial = _relayed(await call.initial_metadata())
            if initial:  # the first message carries it otherwise (one frame fewer)
                await context.send_initial_metadata(initial)
            while (response := await call.read()) is not aio.EOF:
                await context.write(response)
        except aio.AioRpcError as exc:
            _finish(context, exc.code(), exc.details(), exc.trailing_metadata())
            return
        _finish(context, await call.code(), await call.details(), await call.trailing_metadata())


def _finish(context: Any, code: grpc.StatusCode, details: str | None, trailing: Any) -> None:
    relayed = _relayed(trailing)
    if relayed:
        context.set_trailing_metadata(tuple(relayed))
    if code is not grpc.StatusCode.OK:
        context.set_code(code)
        context.set_details(details or "")


class _Abort(Exception):
    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(details)
        self.code = code
        self.details = details
