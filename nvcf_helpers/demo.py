"""``make demo``: a function generated, run behind a local NVCF, and invoked.

Run with ``python -m nvcf_helpers.demo``. On built-in defaults it

1. generates a PyTriton container function with ``nvcf-helpers new``
   (template ``pytriton-container``, long-running: progress and large outputs);
2. fills in the template's marked model part (``demo_model.py`` beside the
   generated ``run.py``): count the words of an uploaded text, slowly, reporting
   progress with partial responses;
3. runs it behind ``nvcf-helpers local`` (health-gated, NVCF headers, per-request
   directories), on free ports;
4. invokes it with an input asset through ``nvcf-helpers invoke``, which shows a
   progress bar while NVCF answers 202, follows the 302 and unpacks the zip;
5. shows the result and stops everything.

``python -m nvcf_helpers.demo --offline`` instead plays both sides of one
invocation in a temporary directory, without any server: the worker's headers,
an input asset, progress, a large output, and what a caller would get back.
"""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import shutil
import subprocess
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


def offline() -> int:
    """The contract end to end without a server."""
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


# The template's marked model part, filled in the way a user would: by
# subclassing the generated Model in a file of its own, so run.py stays as generated.
DEMO_MODEL = '''"""The word_count model: the generated run.py with its model part filled in."""

from __future__ import annotations

import collections
import re
import time

import numpy as np

import run
from nvcf_helpers import InputError, ProgressReporter, read_asset
from nvcf_helpers.pytriton import current_context

SECONDS_PER_STEP = float(run.os.environ.get("DEMO_SECONDS_PER_STEP", "0.4"))


class WordCount(run.Model):
    """Counts the words of the text asset sent with the request, a chunk at a time."""

    def predict(self, inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
        ctx = current_context()
        if not ctx.asset_ids:
            raise InputError("send the text as an input asset (nvcf-helpers invoke --asset FILE)")
        top_k = int(inputs["TOP_K"].ravel()[0])
        lines = read_asset(ctx, ctx.asset_ids[0]).decode("utf-8", "replace").splitlines()
        reporter = ProgressReporter(ctx)
        counts: collections.Counter[str] = collections.Counter()
        steps = 8
        for step in range(steps):
            chunk = lines[step * len(lines) // steps : (step + 1) * len(lines) // steps]
            counts.update(w.lower() for line in chunk for w in re.findall(r"[A-Za-z']+", line))
            time.sleep(SECONDS_PER_STEP)  # stands in for real work
            top = counts.most_common(1)
            reporter.update(
                10 + 80 * (step + 1) // steps,
                {"linesDone": (step + 1) * len(lines) // steps, "leader": top[0][0] if top else ""},
            )
        words, numbers = zip(*counts.most_common(top_k)) if counts else ((), ())
        return [np.array([w.encode() for w in words], dtype=np.object_), np.array(numbers)]


run.MODEL = WordCount()

if __name__ == "__main__":
    run.serve(run.bind)
'''

STORY = """It was the best of times, it was the worst of times, it was the age of wisdom,
it was the age of foolishness, it was the epoch of belief, it was the epoch of
incredulity, it was the season of Light, it was the season of Darkness, it was
the spring of hope, it was the winter of despair, we had everything before us,
we had nothing before us, we were all going direct to Heaven, we were all going
direct the other way.
"""


def _run(command: list[str], shown: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    print(f"$ {shown}", flush=True)
    return subprocess.run(command, check=True, text=True, **kwargs)  # type: ignore[call-overload, no-any-return]


def full(workdir: Path) -> int:
    """Generate, run behind a local NVCF, invoke with an asset, show the result."""
    from nvcf_helpers.local import LocalNvcf
    from nvcf_helpers.spec import load_spec
    from nvcf_helpers.testing import free_port

    cli = [sys.executable, "-m", "nvcf_helpers"]
    _section("1. Generate a PyTriton container function from a template")
    template_args = [
        "pytriton-container",
        "--no-input",
        "-o",
        str(workdir),
        "model_name=word_count",
        "long_running=yes",
        "max_batch_size=0",
        "inputs=TOP_K:INT32:[1]",
        "outputs=WORDS:BYTES:[-1];COUNTS:INT64:[-1]",
    ]
    _run([*cli, "new", *template_args], "nvcf-helpers new " + shlex.join(template_args))
    project = workdir / "word-count-pytriton"
    _section("2. Fill in the model part (demo_model.py subclasses the generated Model)")
    (project / "demo_model.py").write_text(DEMO_MODEL, encoding="utf-8")
    print(f"    wrote {project / 'demo_model.py'}")
    _run([*cli, "check", str(project)], f"nvcf-helpers check {project.name}")

    _section("3. Run it behind a local NVCF (the container's logs follow)")
    # The generated function.json says port 8000; the demo takes free ports so
    # that it runs beside whatever else this machine serves.
    spec = dict(load_spec(project / "function.json").raw)
    http_port, grpc_port, metrics_port = free_port(), free_port(), free_port()
    spec["inferencePort"] = http_port
    spec["health"] = {**spec.get("health", {}), "port": http_port}
    env = {
        "PYTRITON_TRITON_CONFIG_HTTP_PORT": str(http_port),
        "PYTRITON_TRITON_CONFIG_GRPC_PORT": str(grpc_port),
        "PYTRITON_TRITON_CONFIG_METRICS_PORT": str(metrics_port),
        # PyTriton keeps Unix sockets in its workspace, and a socket path may not
        # exceed 107 bytes: a short directory of its own, whatever workdir is.
        "PYTRITON_HOME": tempfile.mkdtemp(prefix="nvcf-demo-"),
    }
    print(f"$ nvcf-helpers local --spec function.json -- python demo_model.py   (port {http_port})")
    story = workdir / "story.txt"
    story.write_text(STORY * 40, encoding="utf-8")
    output_dir = workdir / "result"
    with LocalNvcf(
        spec,
        [sys.executable, "demo_model.py"],
        cwd=project,
        env=env,
        max_response_bytes=200,  # small, so the result comes back as a zip (302)
    ) as nvcf:
        print(f"    function {nvcf.function_id} is ACTIVE at {nvcf.base_url}", flush=True)
        _section("4. Invoke it with an input asset (progress bar on stderr)")
        body = json.dumps(
            {"inputs": [{"name": "TOP_K", "shape": [1], "datatype": "INT32", "data": [10]}]}
        )
        invoke_args = [
            nvcf.function_id,
            "--base-url",
            nvcf.base_url,
            "--data",
            body,
            "--asset",
            str(story),
            "--poll-seconds",
            "1",
            "--output",
            str(output_dir),
        ]
        shown = shlex.join(["nvcf-helpers", "invoke", "-", "--data", body, "--asset", "story.txt"])
        _run([*cli, "invoke", *invoke_args], shown + " --poll-seconds 1 --output result")
    workspaces = list(Path(env["PYTRITON_HOME"]).glob("workspace_*"))
    shutil.rmtree(env["PYTRITON_HOME"], ignore_errors=True)
    _section("5. The result")
    for path in sorted(output_dir.rglob("*")):
        if path.is_file():
            print(f"    {path.relative_to(workdir)}  ({path.stat().st_size} bytes)")
    words_file = next(output_dir.rglob("WORDS.npy"), None)
    counts_file = next(output_dir.rglob("COUNTS.npy"), None)
    if words_file is not None and counts_file is not None:
        import numpy as np

        words = np.load(words_file, allow_pickle=True)  # our own file, written by the model
        counts = np.load(counts_file, allow_pickle=True)
        print(
            "    top words: "
            + ", ".join(f"{w.decode()} {c}" for w, c in zip(words, counts, strict=True))
        )
    print("\nStopped the function and the local NVCF; nothing is left running", end="")
    print(f", and {len(workspaces)} PyTriton workspaces are left behind.")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nvcf_helpers.demo", description=__doc__)
    parser.add_argument("--offline", action="store_true", help="the contract without a server")
    parser.add_argument(
        "--keep", metavar="DIR", help="work in DIR and keep it (default: a temp dir)"
    )
    args = parser.parse_args(argv)
    if args.offline:
        return offline()
    if args.keep:
        workdir = Path(args.keep)
        workdir.mkdir(parents=True, exist_ok=True)
        return full(workdir)
    with tempfile.TemporaryDirectory(prefix="nvcf-demo-") as tmp:
        return full(Path(tmp))


if __name__ == "__main__":
    sys.exit(main())
