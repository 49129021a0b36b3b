"""pytriton/streaming, run as its README says: tokens streamed over SSE through the local NVCF."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from example_support import RunningExample, load_module, run_example

from nvcf_helpers.client import NvcfApiError

pytestmark = pytest.mark.integration

EXAMPLE = "pytriton/streaming"


@pytest.fixture(scope="module")
def streaming(workdir: Path) -> Iterator[RunningExample]:
    """``python train.py``, then ``nvcf-helpers local ... -- python run.py``, in a fresh copy."""
    with run_example(EXAMPLE, workdir) as running:
        yield running


@pytest.fixture(scope="module")
def model(streaming: RunningExample) -> Any:
    """The same language model, loaded in-process from the copy's lm.json."""
    lm = load_module(streaming.directory / "lm.py", "streaming_lm")
    text = (streaming.directory / "lm.json").read_text(encoding="utf-8")
    return lm.LanguageModel(json.loads(text))


def _events(streaming: RunningExample, body: dict[str, Any]) -> list[dict[str, Any]]:
    client = streaming.nvcf.client()
    events = []
    for raw in client.stream(streaming.nvcf.function_id, body):
        line = raw.decode("utf-8").strip()
        if line.startswith("data:"):
            events.append(json.loads(line[len("data:") :]))
    return events


class TestFollowingTheReadme:
    """``python client.py "The digits data set"`` prints the streamed continuation."""

    def test_client_prints_the_continuation(self, streaming: RunningExample, model: Any) -> None:
        """What the client prints is the prompt and the tokens the model generates."""
        (client,) = streaming.commands
        result = streaming.client_command(client)
        prompt = client[2]
        expected = prompt + "".join(model.generate(prompt, 32, seed=0))
        assert result.stdout.startswith(expected + "\n")
        assert "[32 tokens streamed; function log lines carry reqid=client-" in result.stdout


class TestStream:
    """The decoupled model streams one event per token through NVCF's API."""

    def test_tokens_are_the_models_one_event_each(
        self, streaming: RunningExample, model: Any
    ) -> None:
        """Twelve tokens, in order, exactly the in-process model's for that seed."""
        body = {"PROMPT": "Iris plants", "MAX_TOKENS": 12, "SEED": 5, "correlation_id": "job-1"}
        events = _events(streaming, body)
        assert [event["TOKEN"] for event in events] == list(model.generate("Iris plants", 12, 5))

    def test_correlation_id_is_echoed_and_logged(self, streaming: RunningExample) -> None:
        """The body's correlation_id stands in for the NVCF-REQID Triton does not forward."""
        events = _events(streaming, {"PROMPT": "The", "MAX_TOKENS": 3, "correlation_id": "job-42"})
        assert {event["REQUEST_ID"] for event in events} == {"job-42"}
        assert re.search(
            r"\[INFERENCE\] \[reqid=job-42\] streamed 3 token\(s\)$", streaming.log_text(), re.M
        )

    def test_nvcf_headers_do_not_reach_the_model(self, streaming: RunningExample) -> None:
        """Without a correlation_id the id is a fresh UUID, not the gateway's NVCF-REQID."""
        events = _events(streaming, {"PROMPT": "The", "MAX_TOKENS": 2})
        (request_id,) = {event["REQUEST_ID"] for event in events}
        assert re.fullmatch(r"[0-9a-f-]{36}", request_id)
        assert f"[reqid={request_id}] streamed 2 token(s)" in streaming.log_text()

    def test_bad_token_count_is_refused(self, streaming: RunningExample) -> None:
        """MAX_TOKENS outside 1..512 is refused before anything is streamed."""
        with pytest.raises(NvcfApiError) as caught:
            _events(streaming, {"PROMPT": "The", "MAX_TOKENS": 0})
        assert caught.value.status == 400
        assert "MAX_TOKENS is 0: ask for 1 to 512 tokens" in streaming.log_text()

    def test_streamed_error_has_its_message_and_no_traceback(
        self, streaming: RunningExample
    ) -> None:
        """Straight to the container, the SSE error event is the clean message, as a 400."""
        import urllib.error
        import urllib.request

        body = json.dumps({"PROMPT": "The", "MAX_TOKENS": 0}).encode()
        request = urllib.request.Request(
            f"http://{streaming.url}/v2/models/textgen/generate_stream",
            data=body,
            headers={"Content-Type": "application/json", "Accept": "text/event-stream"},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                status, text = response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            status, text = exc.code, exc.read().decode()
        assert status == 400, text
        assert "MAX_TOKENS is 0: ask for 1 to 512 tokens" in text
        assert "Traceback" not in text
