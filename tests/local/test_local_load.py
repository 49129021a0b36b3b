"""Load: many concurrent callers through the local NVCF, nothing lost or mixed up."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from local_support import Raw, Reply, eventually, header_seen

pytestmark = pytest.mark.integration

CALLS = 400
CALLERS = 16


class TestLoad:
    """400 invocations from 16 concurrent callers are all answered, each exactly once."""

    def test_400_invocations_16_callers(self, raw: Raw) -> None:
        """Every call answers 200 with its own input and a unique id; no directory is left."""

        def call(index: int) -> tuple[int, Reply]:
            return index, raw.invoke({"index": index})

        with ThreadPoolExecutor(CALLERS) as pool:
            replies = list(pool.map(call, range(CALLS)))
        assert [reply.status for _, reply in replies] == [200] * CALLS
        echoes = [(index, reply.headers["NVCF-REQID"], reply.json()) for index, reply in replies]
        assert all(echo["input"] == {"index": index} for index, _, echo in echoes)
        request_ids = {request_id for _, request_id, _ in echoes}
        assert len(request_ids) == CALLS
        seen_ids = {header_seen(echo, "NVCF-REQID") for _, _, echo in echoes}
        assert seen_ids == request_ids
        root = Path(header_seen(echoes[0][2], "NVCF-LARGE-OUTPUT-DIR")).parents[1]
        # The local NVCF is shared by the session: look at this test's requests only.
        left = [root / part / rid for rid in request_ids for part in ("response", "inputAssets")]
        assert eventually(lambda: not any(path.exists() for path in left))
