"""The local NVCF gateway against the container called directly and a minimal proxy.

    python benchmarks/local.py [--calls 2000] [--rounds 5] [--invocations 10000]

One standard-library HTTP/1.1 echo server (this file, ``--container``) runs as
the child of ``nvcf-helpers local``; beside it runs a minimal reverse proxy on
the gateway's own HTTP stack (aiohttp, this file, ``--proxy``). All in one run:

- latency: sequential calls, a new connection each, interleaved one by one
  (direct, gateway, proxy, then backwards); what the gateway adds over direct
  against what the minimal proxy adds. Bound: at most 1.5x.
- throughput: 16 concurrent callers (keep-alive connections), rounds that
  alternate direct, gateway and proxy; the median round of each. Bound: the
  gateway at least 0.8x direct; the proxy's ratio beside it shows the stack's
  floor, and the gateway against the proxy at least 1/1.5.
- memory: the ``local`` process's RSS after 1,000 and after 10,000
  invocations. Bound: it grows at most 10 MB.

The servers' output goes to ``build/bench-logs/local-*.log``.
"""

from __future__ import annotations

import argparse
import http.client
import statistics
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from figures import Figure, interleaved_medians, report
from servers import log_path, one_line_failures

BODY = b'{"text": "benchmark"}'
CALLERS = 16
LATENCY_BOUND = 1.5
THROUGHPUT_BOUND = 0.8
RSS_GROWTH_BOUND_MB = 10.0
_JSON = {"Content-Type": "application/json"}


# -- the servers (each runs as its own process) -----------------------------------------------


class _Echo(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def do_GET(self) -> None:
        self._answer(b'{"status": "ok"}')

    def do_POST(self) -> None:
        self._answer(self.rfile.read(int(self.headers.get("Content-Length", "0"))))

    def _answer(self, body: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def serve_container(port: int) -> None:
    """The container: ``GET /health`` and ``POST /infer`` (an echo), HTTP/1.1, threaded."""
    ThreadingHTTPServer.daemon_threads = True
    ThreadingHTTPServer.request_queue_size = 128  # 16 callers connect at once; the default is 5
    ThreadingHTTPServer(("127.0.0.1", port), _Echo).serve_forever()


def serve_proxy(port: int, target: int) -> None:
    """The minimal reverse proxy the gateway is held against: aiohttp server and client."""
    from aiohttp import ClientSession, web

    async def forward(request: web.Request) -> web.Response:
        session: ClientSession = request.app["session"]
        url = f"http://127.0.0.1:{target}{request.path_qs}"
        headers = {"Content-Type": request.headers.get("Content-Type", "application/json")}
        async with session.request(
            request.method, url, data=await request.read(), headers=headers
        ) as reply:
            body = await reply.read()
            return web.Response(status=reply.status, body=body, headers={**_JSON})

    async def session_context(app: web.Application):  # type: ignore[no-untyped-def]
        async with ClientSession() as session:
            app["session"] = session
            yield

    app = web.Application()
    app.cleanup_ctx.append(session_context)
    app.router.add_route("*", "/{tail:.*}", forward)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


# -- the callers -------------------------------------------------------------------------------


def new_connection_call(port: int, path: str) -> Callable[[], None]:
    """A POST of :data:`BODY` over a new connection each call, as a sequential caller makes."""

    def call() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        try:
            connection.request("POST", path, body=BODY, headers=_JSON)
            response = connection.getresponse()
            if response.read() != BODY or response.status != 200:
                raise SystemExit(f"port {port} {path} answered {response.status}")
        finally:
            connection.close()

    return call


def concurrent_calls(port: int, path: str, count: int) -> float:
    """Requests per second of ``count`` POSTs by :data:`CALLERS` keep-alive callers."""
    share = [count // CALLERS + (index < count % CALLERS) for index in range(CALLERS)]
    failures: list[str] = []
    start = threading.Barrier(CALLERS + 1)

    def caller(calls: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        start.wait()
        try:
            for _ in range(calls):
                connection.request("POST", path, body=BODY, headers=_JSON)
                response = connection.getresponse()
                if response.read() != BODY or response.status != 200:
                    failures.append(f"port {port} {path} answered {response.status}")
        except OSError as exc:  # a round with a failed caller would count too few requests
            failures.append(f"port {port} {path}: {exc}")
        finally:
            connection.close()

    threads = [threading.Thread(target=caller, args=(calls,)) for calls in share]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    if failures:
        raise SystemExit(failures[0])
    return count / elapsed


def rss_mb(pid: int) -> float:
    """The resident set of process ``pid``, in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise SystemExit(f"process {pid} has no VmRSS")


# -- the figures -------------------------------------------------------------------------------


def latency_figure(
    direct: Callable[[], None], gateway: Callable[[], None], proxy: Callable[[], None], calls: int
) -> Figure:
    medians = interleaved_medians({"direct": direct, "gateway": gateway, "proxy": proxy}, calls)
    gateway_added = medians["gateway"] - medians["direct"]
    proxy_added = medians["proxy"] - medians["direct"]
    return Figure(
        "local gateway: added latency / minimal aiohttp proxy's",
        gateway_added / proxy_added,
        LATENCY_BOUND,
        at_least=False,
    )


def throughput_figures(ports: dict[str, tuple[int, str]], rounds: int) -> list[Figure]:
    """Median requests/s of each side over ``rounds`` rounds, the sides' order alternating."""
    count = CALLERS * 50
    rates: dict[str, list[float]] = {side: [] for side in ports}
    for port, path in ports.values():
        concurrent_calls(port, path, count)  # warm-up
    sides = list(ports)
    for index in range(rounds):
        for side in sides if index % 2 == 0 else sides[::-1]:
            rates[side].append(concurrent_calls(*ports[side], count))
    median = {side: statistics.median(values) for side, values in rates.items()}
    return [
        Figure(
            f"local gateway: throughput / direct, {CALLERS} callers",
            median["gateway"] / median["direct"],
            THROUGHPUT_BOUND,
        ),
        # The floor of the HTTP stack: what any aiohttp proxy in front of this container reaches.
        Figure(
            f"minimal aiohttp proxy: throughput / direct, {CALLERS} callers",
            median["proxy"] / median["direct"],
            THROUGHPUT_BOUND,
        ),
        Figure(
            f"local gateway: throughput / minimal proxy's, {CALLERS} callers",
            median["gateway"] / median["proxy"],
            1 / LATENCY_BOUND,
        ),
    ]


def rss_figure(pid: int, gateway: int, gateway_path: str, invocations: int) -> Figure:
    first = invocations // 10
    concurrent_calls(gateway, gateway_path, first)
    before = rss_mb(pid)
    concurrent_calls(gateway, gateway_path, invocations - first)
    growth = rss_mb(pid) - before
    return Figure(
        f"local gateway: RSS growth, invocation {first:,} to {invocations:,}",
        growth,
        RSS_GROWTH_BOUND_MB,
        unit="MB",
        at_least=False,
    )


def wait_for_port(port: int, what: str, log: Path) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            http.client.HTTPConnection("127.0.0.1", port, timeout=1).connect()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise SystemExit(f"{what} did not get ready; its output is in {log}") from None
            time.sleep(0.05)


def measure(calls: int, rounds: int, invocations: int) -> list[Figure]:
    import subprocess

    from nvcf_helpers.local import LocalNvcf
    from nvcf_helpers.testing import free_port, stop_process

    container, proxy_port = free_port(), free_port()
    spec = {
        "name": "benchmark",
        "inferenceUrl": "/infer",
        "inferencePort": container,
        "health": {
            "protocol": "HTTP",
            "uri": "/health",
            "port": container,
            "timeout": "PT10S",
            "expectedStatusCode": 200,
        },
        "containerImage": "local/echo:latest",
    }
    me = str(Path(__file__).resolve())
    proxy_log = log_path("local-proxy")
    with proxy_log.open("wb") as stream:
        proxy = subprocess.Popen(
            [sys.executable, me, "--proxy", str(proxy_port), str(container)],
            stdout=stream,
            stderr=subprocess.STDOUT,
        )
    try:
        with LocalNvcf(
            spec,
            [sys.executable, me, "--container", str(container)],
            max_concurrency=CALLERS * 2,
            output=log_path("local-nvcf"),
        ) as nvcf:
            wait_for_port(proxy_port, "the minimal proxy", proxy_log)
            assert nvcf.process is not None
            gateway = int(nvcf.base_url.rsplit(":", 1)[1])
            path = f"/v2/nvcf/pexec/functions/{nvcf.function_id}"
            calls_of = {
                "direct": new_connection_call(container, "/infer"),
                "gateway": new_connection_call(gateway, path),
                "proxy": new_connection_call(proxy_port, "/infer"),
            }
            return [
                rss_figure(nvcf.process.pid, gateway, path, invocations),
                latency_figure(calls_of["direct"], calls_of["gateway"], calls_of["proxy"], calls),
                *throughput_figures(
                    {
                        "direct": (container, "/infer"),
                        "gateway": (gateway, path),
                        "proxy": (proxy_port, "/infer"),
                    },
                    rounds,
                ),
            ]
    finally:
        stop_process(proxy)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000, help="latency calls to each side")
    parser.add_argument("--rounds", type=int, default=5, help="throughput rounds of each side")
    parser.add_argument("--invocations", type=int, default=10_000, help="for the RSS figure")
    parser.add_argument("--container", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--proxy", type=int, nargs=2, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.container:
        serve_container(args.container)
        return 0
    if args.proxy:
        serve_proxy(*args.proxy)
        return 0
    with one_line_failures():
        return report(measure(args.calls, args.rounds, args.invocations))


if __name__ == "__main__":
    sys.exit(main())
