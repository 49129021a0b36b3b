"""``make demo``: the NVCF container contract, end to end, on built-in defaults.

Run with ``python -m nvcf_helpers.demo``. It plays both sides of one
invocation in a temporary directory: the worker (sample NVCF headers, an
input asset, the per-request directories) and the container (a request
context, the asset read, progress reported, a large output written), then
shows what a caller would get back.
"""

from __future__ import annotations

import json
import logging
import sys
import tempfile
import uuid
import zipfile
from pathlib import Path

from nvcf_helpers import (
    PROGRESS_FILE,
    ProgressReporter,
    RequestContext,
    configure_logging,
    large_output,
    list_assets,
    log_request,
    parse_progress,
    read_asset,
    respond_or_spill,
)

log = logging.getLogger("nvcf_helpers.demo")


def _section(title: str) -> None:
    print(f"\n== {title} ==", flush=True)


def worker_prepares(root: Path) -> dict[str, str]:
    """What NVCF's worker does before calling the container: directories, asset, headers."""
    request_id = str(uuid.uuid4())
    asset_id = str(uuid.uuid4())
    asset_dir = root / "inputAssets" / request_id
    output_dir = root / "response" / request_id
    asset_dir.mkdir(parents=True)
    output_dir.mkdir(parents=True)
    output_dir.chmod(0o777)
    (asset_dir / asset_id).write_text("the quick brown fox jumps over the lazy dog\n" * 20)
    return {
        "nvcf-reqid": request_id,  # HTTP/2 lower-cases names; lookups must not care
        "NVCF-FUNCTION-NAME": "demo-function",
        "NVCF-FUNCTION-ID": str(uuid.uuid4()),
        "NVCF-FUNCTION-VERSION-ID": str(uuid.uuid4()),
        "NVCF-NCAID": "demo-nca",
        "NVCF-ASSET-DIR": str(asset_dir),
        "NVCF-LARGE-OUTPUT-DIR": str(output_dir),
        "NVCF-MAX-RESPONSE-SIZE-BYTES": "100",  # small, so the result spills
        "NVCF-FUNCTION-ASSET-IDS": asset_id,
        "nvcf-poll-seconds": "60",
        "Content-Type": "application/json",
    }


def container_handles(headers: dict[str, str]) -> bytes:
    """What a container does with the request, using nothing but nvcf_helpers."""
    ctx = RequestContext.from_headers(headers)
    with log_request(ctx):
        log.info("request for %s with assets %s", ctx.function_name, list(ctx.asset_ids))
        reporter = ProgressReporter(ctx)
        text = read_asset(ctx, ctx.asset_ids[0]).decode()
        lines = text.splitlines()
        words: list[str] = []
        for index, line in enumerate(lines, start=1):
            words.extend(line.split())
            if index % 5 == 0:
                percent = index * 100 // len(lines)
                reporter.update(percent, {"linesDone": index})
                log.info("progress %d%%", percent)
        counts: dict[str, int] = {}
        for word in words:
            counts[word] = counts.get(word, 0) + 1
        report = "\n".join(f"{word}\t{count}" for word, count in sorted(counts.items()))
        with large_output(ctx, "word-counts.tsv") as stream:
            stream.write(report.encode())
        body = json.dumps({"words": len(words), "counts": counts, "details": "word-counts.tsv"})
        reply = respond_or_spill(ctx, body.encode(), "response.json")
        log.info("done: %d bytes inline", len(reply))
        return reply


def caller_sees(headers: dict[str, str], reply: bytes) -> None:
    """What NVCF's worker makes of the container's work, as the caller sees it."""
    ctx = RequestContext.from_headers(headers)
    if ctx.large_output_dir is None or ctx.request_id is None:
        raise SystemExit("the worker's headers lost their directories")
    progress = parse_progress((ctx.large_output_dir / PROGRESS_FILE).read_bytes(), ctx.request_id)
    print(f"202 NVCF-PERCENT-COMPLETE: {progress.progress}  body: {progress.partial_response}")
    files = sorted(
        p for p in ctx.large_output_dir.iterdir() if p.is_file() and p.name != PROGRESS_FILE
    )
    archive = ctx.large_output_dir.parent / f"{ctx.request_id}.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr(f"{ctx.request_id}.response", reply)
        for path in files:
            bundle.write(path, path.name)
    print(f"302 Location: <download link>  ({archive.stat().st_size} bytes zipped)")
    with zipfile.ZipFile(archive) as bundle:
        for info in bundle.infolist():
            print(f"    {info.filename:48} {info.file_size:6} bytes")
        print(f"    response body: {bundle.read(f'{ctx.request_id}.response').decode()}")


def main() -> int:
    configure_logging()
    with tempfile.TemporaryDirectory(prefix="nvcf-demo-") as tmp:
        _section("1. NVCF's worker prepares the request")
        headers = worker_prepares(Path(tmp))
        for name, value in headers.items():
            print(f"    {name}: {value}")
        _section("2. The container handles it (NVCF-format logs on stdout)")
        ctx = RequestContext.from_headers(headers)
        print(f"    assets delivered: {list_assets(ctx)}")
        reply = container_handles(headers)
        _section("3. What the caller gets back")
        caller_sees(headers, reply)
    return 0


if __name__ == "__main__":
    sys.exit(main())
