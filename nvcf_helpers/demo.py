"""``make demo``: a function generated, run behind a local NVCF, and invoked.

Run with ``python -m nvcf_helpers.demo``. On built-in defaults it

1. generates a PyTriton container function with ``nvcf-helpers new``
   (template ``pytriton-container``, long-running: progress and large outputs);
2. fills in the template's marked model part (``demo_model.py`` beside the
   generated ``run.py``): count the words of an uploaded text, slowly, reporting
   progress with partial responses;
3. runs it behind ``nvcf-helpers local`` (health-gated, NVCF headers, per-request
   directories), on free ports, with the server's and the container's logs in
   a file it names (their last lines are shown if something fails);
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
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
import zipfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nvcf_helpers import (
    PROGRESS_FILE,
    NvcfHelperError,
    ProgressReporter,
    RequestContext,
    configure_logging,
    large_output,
    list_assets,
    log_request,
    names,
    parse_progress,
    read_asset,
    respond_or_spill,
)

if TYPE_CHECKING:  # tooling, imported where it is used so that --offline needs none of it
    from nvcf_helpers.local import LocalNvcf

log = logging.getLogger("nvcf_helpers.demo")

#: Lines of the log shown when a step fails.
LOG_TAIL_LINES = 40


def _say(text: str = "") -> None:
    print(text, flush=True)  # flushed, so it keeps its place among the tools' own output


def _section(title: str) -> None:
    _say(f"\n== {title} ==")


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
        # HTTP/2 lower-cases names, and NVCF's worker sends some that way: lookups must not care.
        names.REQUEST_ID.lower(): request_id,
        names.FUNCTION_NAME: "demo-function",
        names.FUNCTION_ID: str(uuid.uuid4()),
        names.FUNCTION_VERSION_ID: str(uuid.uuid4()),
        names.NCA_ID: "demo-nca",
        names.ASSET_DIR: str(asset_dir),
        names.LARGE_OUTPUT_DIR: str(output_dir),
        names.MAX_RESPONSE_SIZE: "100",  # small, so the result spills
        names.FUNCTION_ASSET_IDS: asset_id,
        names.POLL_SECONDS.lower(): "60",
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
    _say(f"202 {names.PERCENT_COMPLETE}: {progress.progress}  body: {progress.partial_response}")
    files = sorted(
        p for p in ctx.large_output_dir.iterdir() if p.is_file() and p.name != PROGRESS_FILE
    )
    archive = ctx.large_output_dir.parent / f"{ctx.request_id}.zip"
    member = names.response_member(ctx.request_id)
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr(member, reply)
        for path in files:
            bundle.write(path, path.name)
    _say(f"302 Location: <download link>  ({archive.stat().st_size} bytes zipped)")
    with zipfile.ZipFile(archive) as bundle:
        for info in bundle.infolist():
            _say(f"    {info.filename:48} {info.file_size:6} bytes")
        _say(f"    response body: {bundle.read(member).decode()}")


def offline() -> int:
    """The contract end to end without a server."""
    configure_logging()
    with tempfile.TemporaryDirectory(prefix="nvcf-demo-") as tmp:
        _section("1. NVCF's worker prepares the request")
        headers = worker_prepares(Path(tmp))
        for name, value in headers.items():
            _say(f"    {name}: {value}")
        _section("2. The container handles it (NVCF-format logs on stdout)")
        ctx = RequestContext.from_headers(headers)
        _say(f"    assets delivered: {list_assets(ctx)}")
        reply = container_handles(headers)
        _section("3. What the caller gets back")
        caller_sees(headers, reply)
    return 0


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


class DemoError(NvcfHelperError):
    """A step of the demo failed; the message says which and why."""


_CLI = (sys.executable, "-m", "nvcf_helpers")


def _run(
    command: str, args: Sequence[str], shown: str, *, capture: bool = False
) -> subprocess.CompletedProcess[str]:
    """Run ``nvcf-helpers COMMAND ARGS``, shown as ``$ nvcf-helpers COMMAND shown``.

    Its stderr stays on the terminal; its stdout too, unless ``capture``.
    """
    _say(f"$ nvcf-helpers {command} {shown}")
    result = subprocess.run(
        [*_CLI, command, *args],
        text=True,
        stdout=subprocess.PIPE if capture else None,
        check=False,
    )
    if result.returncode != 0:
        raise DemoError(f"nvcf-helpers {command} exited with status {result.returncode}")
    return result


def generate(workdir: Path) -> Path:
    """Steps 1 and 2: a project from the template, its model part filled in, checked."""
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
    _run("new", template_args, shlex.join(template_args))
    project = workdir / "word-count-pytriton"
    _section("2. Fill in the model part (demo_model.py subclasses the generated Model)")
    (project / "demo_model.py").write_text(DEMO_MODEL, encoding="utf-8")
    _say(f"    wrote {project / 'demo_model.py'}")
    _run("check", [str(project)], project.name)
    return project


def _on_free_ports(project: Path, pytriton_home: Path) -> tuple[dict[str, Any], dict[str, str]]:
    """The function definition and the container's environment, on free ports.

    The generated function.json says port 8000; the demo takes free ports so
    that it runs beside whatever else this machine serves.
    """
    from nvcf_helpers.spec import load_spec
    from nvcf_helpers.testing import free_port

    http_port = free_port()
    spec = load_spec(project / "function.json").on_port(http_port).to_json()
    env = {
        "PYTRITON_TRITON_CONFIG_HTTP_PORT": str(http_port),
        "PYTRITON_TRITON_CONFIG_GRPC_PORT": str(free_port()),
        "PYTRITON_TRITON_CONFIG_METRICS_PORT": str(free_port()),
        # PyTriton keeps Unix sockets in its workspace, and a socket path may not
        # exceed 107 bytes: a short directory of its own, whatever workdir is.
        "PYTRITON_HOME": str(pytriton_home),
    }
    return spec, env


@contextmanager
def running(project: Path, log_path: Path, pytriton_home: Path) -> Iterator[LocalNvcf]:
    """Step 3: the project behind a local NVCF until the block ends; yields the LocalNvcf."""
    from nvcf_helpers.local import LocalNvcf

    _section("3. Run it behind a local NVCF")
    spec, env = _on_free_ports(project, pytriton_home)
    _say(
        "$ nvcf-helpers local --spec function.json -- python demo_model.py"
        f"   (port {spec['inferencePort']})"
    )
    _say(f"    the local NVCF's and the container's logs go to {log_path}")
    started = time.monotonic()
    nvcf = LocalNvcf(
        spec,
        [sys.executable, "demo_model.py"],
        cwd=project,
        env=env,
        output=log_path,
        max_response_bytes=200,  # small, so the result comes back as a zip (302)
    )
    nvcf.start()  # on failure it stops what it started and raises LocalNvcfError
    _say(f"    function {nvcf.function_id} is ACTIVE at {nvcf.base_url}")
    _say(f"    (started and healthy in {time.monotonic() - started:.1f} s)")
    _say(f"    dashboard: {nvcf.base_url}/")
    try:
        yield nvcf
    finally:
        status = nvcf.stop()
    if status != 0:
        raise DemoError(f"the local NVCF exited with status {status} when stopped")


def invoke(base_url: str, story: Path, output_dir: Path) -> None:
    """Step 4: one invocation with an input asset, its progress bar on stderr."""
    _section("4. Invoke it with an input asset (progress from NVCF's 202 answers)")
    body = json.dumps(
        {"inputs": [{"name": "TOP_K", "shape": [1], "datatype": "INT32", "data": [10]}]}
    )
    invoke_args = ["-", "--data", body, "--asset", str(story), "--poll-seconds", "1"]
    shown = shlex.join(["-", "--data", body, "--asset", story.name, "--poll-seconds", "1"])
    result = _run(
        "invoke",
        [*invoke_args, "--base-url", base_url, "--output", str(output_dir)],
        f"{shown} --output {output_dir.name}",
        capture=True,
    )
    _say(f"    response body: {result.stdout.strip()}")


def show_result(workdir: Path, output_dir: Path) -> None:
    """Step 5: the files the invocation brought back, and the words they count."""
    import numpy as np

    _section("5. The result")
    for path in sorted(output_dir.rglob("*")):
        if path.is_file():
            _say(f"    {path.relative_to(workdir)}  ({path.stat().st_size} bytes)")
    words_file = next(output_dir.rglob("WORDS.npy"), None)
    counts_file = next(output_dir.rglob("COUNTS.npy"), None)
    if words_file is None or counts_file is None:
        raise DemoError(f"the result in {output_dir} lacks WORDS.npy or COUNTS.npy")
    words = np.load(words_file, allow_pickle=True)  # our own file, written by the model
    counts = np.load(counts_file, allow_pickle=True)
    pairs = zip(words, counts, strict=True)
    _say("    top words: " + ", ".join(f"{w.decode()} {c}" for w, c in pairs))


def _tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def full(workdir: Path, log_path: Path) -> int:
    """Generate, run behind a local NVCF, invoke with an asset, show the result."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log_path.write_bytes(b"")  # this run's logs only
    pytriton_home = Path(tempfile.mkdtemp(prefix="nvcf-demo-"))
    story = workdir / "story.txt"
    output_dir = workdir / "result"
    try:
        project = generate(workdir)
        story.write_text(STORY * 40, encoding="utf-8")
        with running(project, log_path, pytriton_home) as nvcf:
            invoke(nvcf.base_url, story, output_dir)
        workspaces = list(pytriton_home.glob("workspace_*"))
        show_result(workdir, output_dir)
    except NvcfHelperError as exc:  # LocalNvcfError and DemoError among them
        _say(f"\nThe demo failed: {exc}")
        tail = _tail(log_path)
        if tail:
            _say(f"The last lines of {log_path}:\n{tail}")
        return 1
    except KeyboardInterrupt:  # the servers were stopped on the way out
        _say(f"\nInterrupted. The local NVCF's and the container's logs: {log_path}")
        return 130
    finally:
        shutil.rmtree(pytriton_home, ignore_errors=True)
    _say("\nDone: the function and the local NVCF are stopped, nothing is left running,")
    _say(f"and {len(workspaces)} PyTriton workspaces are left behind.")
    _say(f"The local NVCF's and the container's logs: {log_path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nvcf_helpers.demo", description=__doc__)
    parser.add_argument("--offline", action="store_true", help="the contract without a server")
    parser.add_argument(
        "--keep", metavar="DIR", help="work in DIR and keep it (default: a temp dir)"
    )
    parser.add_argument(
        "--log",
        metavar="FILE",
        help="write the server's and the container's logs here "
        "(default: DIR/demo.log with --keep, else a new nvcf-demo-*.log in the temp dir)",
    )
    args = parser.parse_args(argv)
    if args.offline:
        return offline()
    if args.log:
        log_path = Path(args.log).resolve()
    elif args.keep:
        log_path = Path(args.keep).resolve() / "demo.log"
    else:
        handle, name = tempfile.mkstemp(prefix="nvcf-demo-", suffix=".log")
        os.close(handle)
        log_path = Path(name)
    if args.keep:
        workdir = Path(args.keep)
        workdir.mkdir(parents=True, exist_ok=True)
        return full(workdir, log_path)
    with tempfile.TemporaryDirectory(prefix="nvcf-demo-") as tmp:
        return full(Path(tmp), log_path)


if __name__ == "__main__":
    sys.exit(main())
