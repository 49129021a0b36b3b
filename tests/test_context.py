"""Tests for nvcf_helpers.context: RequestContext from headers, parameters and env."""

from __future__ import annotations

import dataclasses
import email.message
import json
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nvcf_helpers import (
    DEFAULT_MAX_RESPONSE_BYTES,
    HEADER_NAMES,
    HeaderError,
    InvalidInputError,
    NvcfHelperError,
    RequestContext,
)

# One distinct value per header, so a field mapped from the wrong header shows.
FULL_HEADERS = {
    "NVCF-REQID": "0b1c4a4e-7e0d-4d47-9a53-2f7c1c3f6b1a",
    "NVCF-SUB": "message-subject",
    "NVCF-NCAID": "nca-123",
    "NVCF-FUNCTION-NAME": "echo",
    "NVCF-FUNCTION-ID": "fn-id",
    "NVCF-FUNCTION-VERSION-ID": "fn-version-id",
    "NVCF-ASSET-DIR": "/var/inf/inputAssets/req",
    "NVCF-LARGE-OUTPUT-DIR": "/var/inf/response/req",
    "NVCF-MAX-RESPONSE-SIZE-BYTES": "1234",
    "NVCF-NSPECTID": "nspect-1",
    "NVCF-BACKEND": "cluster-a",
    "NVCF-INSTANCETYPE": "g5.xlarge",
    "NVCF-REGION": "us-west-2",
    "NVCF-ENV": "spot",
    "NVCF-FUNCTION-ASSET-IDS": "asset-1,asset-2",
    "nvcf-poll-seconds": "42",
}

FULL_CONTEXT = RequestContext(
    request_id="0b1c4a4e-7e0d-4d47-9a53-2f7c1c3f6b1a",
    subject="message-subject",
    nca_id="nca-123",
    function_name="echo",
    function_id="fn-id",
    function_version_id="fn-version-id",
    asset_dir=Path("/var/inf/inputAssets/req"),
    large_output_dir=Path("/var/inf/response/req"),
    max_response_bytes=1234,
    nspect_id="nspect-1",
    backend="cluster-a",
    instance_type="g5.xlarge",
    region="us-west-2",
    env="spot",
    asset_ids=("asset-1", "asset-2"),
    poll_seconds=42,
)

INTEGER_FIELDS = ["max_response_bytes", "poll_seconds"]
STRING_FIELDS = [
    name
    for name in HEADER_NAMES
    if name not in ("asset_dir", "large_output_dir", "asset_ids", *INTEGER_FIELDS)
]


class TestFromHeaders:
    """RequestContext.from_headers maps every NVCF header onto its field."""

    def test_every_field_is_mapped_from_its_header(self) -> None:
        """Each header lands in its own field, typed."""
        assert RequestContext.from_headers(FULL_HEADERS) == FULL_CONTEXT

    def test_header_names_table_covers_every_field(self) -> None:
        """HEADER_NAMES names a header for exactly the dataclass fields."""
        names = [field.name for field in dataclasses.fields(RequestContext)]
        assert list(HEADER_NAMES) == names

    @pytest.mark.parametrize("transform", [str.lower, str.upper, str.title])
    def test_names_match_in_any_case(self, transform: object) -> None:
        """Lower, upper and title case all match (HTTP/2 lower-cases names)."""
        assert callable(transform)
        headers = {transform(name): value for name, value in FULL_HEADERS.items()}
        assert RequestContext.from_headers(headers) == FULL_CONTEXT

    def test_defaults_when_absent(self) -> None:
        """No headers gives None fields, NVCF's default size and no asset ids."""
        ctx = RequestContext.from_headers({})
        assert ctx == RequestContext()
        assert ctx.max_response_bytes == DEFAULT_MAX_RESPONSE_BYTES == 5 * 1024 * 1024
        assert ctx.asset_ids == ()
        assert ctx.poll_seconds is None
        for name in (*STRING_FIELDS, "asset_dir", "large_output_dir"):
            assert getattr(ctx, name) is None, name

    def test_empty_headers_are_none_never_empty_string(self) -> None:
        """An empty or blank header reads as absent: None, or the default."""
        headers = {name: "" for name in FULL_HEADERS}
        headers["NVCF-REQID"] = "   "
        ctx = RequestContext.from_headers(headers)
        assert ctx == RequestContext()
        assert ctx.request_id is None

    def test_unrelated_headers_are_ignored(self) -> None:
        """Headers that are not NVCF's do not disturb the context."""
        ctx = RequestContext.from_headers(
            {"Content-Type": "application/json", "NVCF-REQID": "r1", "NVCF-UNKNOWN": "x"}
        )
        assert ctx == RequestContext(request_id="r1")

    def test_iterable_of_pairs_last_value_wins(self) -> None:
        """A list of (name, value) pairs works; a repeated name keeps its last value."""
        ctx = RequestContext.from_headers(
            [("nvcf-reqid", "first"), ("NVCF-FUNCTION-ID", "fn"), ("NVCF-REQID", "second")]
        )
        assert ctx.request_id == "second"
        assert ctx.function_id == "fn"

    def test_aiohttp_case_insensitive_multidict(self) -> None:
        """aiohttp's CIMultiDict (a multi-mapping) is read, last value winning."""
        from multidict import CIMultiDict

        headers: CIMultiDict[str] = CIMultiDict()
        headers.add("nvcf-reqid", "first")
        headers.add("NVCF-REQID", "second")
        headers.add("Nvcf-Max-Response-Size-Bytes", "77")
        ctx = RequestContext.from_headers(headers)
        assert ctx.request_id == "second"
        assert ctx.max_response_bytes == 77

    def test_http_server_headers(self) -> None:
        """http.server's header object (an email Message, not a Mapping) is read."""
        message = email.message.Message()
        for name, value in FULL_HEADERS.items():
            message[name] = value
        # The annotation names Mapping; a Message has the items() that from_headers uses.
        assert RequestContext.from_headers(message) == FULL_CONTEXT  # type: ignore[arg-type]

    def test_non_string_values_are_ignored(self) -> None:
        """A value that is not a string is not a header value."""
        headers: dict[str, object] = {"NVCF-REQID": 5, "NVCF-POLL-SECONDS": 3}
        ctx = RequestContext.from_headers(headers)  # type: ignore[arg-type]
        assert ctx == RequestContext()

    @pytest.mark.parametrize(
        ("raw", "expected"),
        [
            ("a,b", ("a", "b")),
            (" a , b ", ("a", "b")),
            ("a,,b,", ("a", "b")),
            (",", ()),
            ("single", ("single",)),
        ],
    )
    def test_asset_ids_split_and_drop_empties(self, raw: str, expected: tuple[str, ...]) -> None:
        """NVCF-FUNCTION-ASSET-IDS is split on commas, trimmed, empties dropped."""
        assert RequestContext.from_headers({"NVCF-FUNCTION-ASSET-IDS": raw}).asset_ids == expected

    @pytest.mark.parametrize("value", ["abc", "1.5", "-1", "1e6", "+5", "5_000", "0x10", "١٢"])
    def test_malformed_size_names_header_and_value(self, value: str) -> None:
        """A size that is not plain digits raises HeaderError naming header and value."""
        with pytest.raises(HeaderError) as caught:
            RequestContext.from_headers({"nvcf-max-response-size-bytes": value})
        message = str(caught.value)
        assert "NVCF-MAX-RESPONSE-SIZE-BYTES" in message
        assert repr(value) in message
        assert "non-negative integer" in message
        assert caught.value.header == "NVCF-MAX-RESPONSE-SIZE-BYTES"
        assert caught.value.value == value

    @pytest.mark.parametrize("value", ["-3", "2.5", "soon"])
    def test_negative_or_non_integer_poll_seconds(self, value: str) -> None:
        """A negative or fractional poll time raises HeaderError naming header and value."""
        with pytest.raises(HeaderError, match=rf"NVCF-POLL-SECONDS is '{value}'"):
            RequestContext.from_headers({"NVCF-POLL-SECONDS": value})

    def test_header_error_is_a_client_error(self) -> None:
        """HeaderError is an InvalidInputError, hence an NvcfHelperError and a ValueError."""
        with pytest.raises(HeaderError) as caught:
            RequestContext.from_headers({"NVCF-POLL-SECONDS": "x"})
        assert isinstance(caught.value, InvalidInputError)
        assert isinstance(caught.value, NvcfHelperError)
        assert isinstance(caught.value, ValueError)

    def test_integer_headers_accept_surrounding_whitespace_and_zero(self) -> None:
        """' 0 ' is zero, not an error."""
        ctx = RequestContext.from_headers(
            {"NVCF-MAX-RESPONSE-SIZE-BYTES": " 0 ", "NVCF-POLL-SECONDS": "0"}
        )
        assert (ctx.max_response_bytes, ctx.poll_seconds) == (0, 0)


@st.composite
def random_case(draw: st.DrawFn, name: str) -> str:
    """``name`` with each letter's case drawn at random."""
    flips = draw(st.lists(st.booleans(), min_size=len(name), max_size=len(name)))
    return "".join(c.upper() if up else c.lower() for c, up in zip(name, flips, strict=True))


# database=None: no .hypothesis/ directory, as tests write only under tmp dirs.
class TestHeaderProperties:
    """Property tests: header parsing holds for any case and any value."""

    @settings(database=None, deadline=None)
    @given(data=st.data(), field=st.sampled_from(STRING_FIELDS), value=st.text())
    def test_string_field_any_case_any_value(
        self, data: st.DataObject, field: str, value: str
    ) -> None:
        """A string header in random case yields its value, or None when blank."""
        name = data.draw(random_case(HEADER_NAMES[field]))
        ctx = RequestContext.from_headers({name: value})
        assert getattr(ctx, field) == (value if value.strip() else None)

    @settings(database=None, deadline=None)
    @given(data=st.data(), field=st.sampled_from(INTEGER_FIELDS), number=st.integers(0, 10**30))
    def test_integers_round_trip(self, data: st.DataObject, field: str, number: int) -> None:
        """Any non-negative integer written in a header reads back equal."""
        name = data.draw(random_case(HEADER_NAMES[field]))
        assert getattr(RequestContext.from_headers({name: str(number)}), field) == number

    @settings(database=None, deadline=None, max_examples=300)
    @given(field=st.sampled_from(INTEGER_FIELDS), junk=st.text())
    def test_integer_junk_parses_or_raises_header_error(self, field: str, junk: str) -> None:
        """Any text either parses to its integer or raises HeaderError, never anything else."""
        text = junk.strip()
        headers = {HEADER_NAMES[field]: junk}
        if text and not (text.isascii() and text.isdigit()):
            with pytest.raises(HeaderError, match=re.escape(HEADER_NAMES[field])):
                RequestContext.from_headers(headers)
        else:
            expected = int(text) if text else getattr(RequestContext(), field)
            assert getattr(RequestContext.from_headers(headers), field) == expected

    @settings(database=None, deadline=None)
    @given(ids=st.lists(st.text(alphabet=st.characters(blacklist_characters=","))))
    def test_asset_ids_are_non_empty_and_trimmed(self, ids: list[str]) -> None:
        """Asset ids joined by commas come back trimmed, without empty ones."""
        ctx = RequestContext.from_headers({"nvcf-function-asset-ids": ",".join(ids)})
        assert ctx.asset_ids == tuple(i.strip() for i in ids if i.strip())
        assert all(ctx.asset_ids)


class TestFromParameters:
    """RequestContext.from_parameters reads PyTriton and Python-backend parameters."""

    def test_pytriton_dict(self) -> None:
        """A PyTriton parameters dict is read like headers."""
        assert RequestContext.from_parameters(dict(FULL_HEADERS)) == FULL_CONTEXT

    def test_non_string_values_ignored(self) -> None:
        """Numbers and booleans are body parameters, never header fields."""
        params = {"NVCF-REQID": "r1", "NVCF-MAX-RESPONSE-SIZE-BYTES": 10, "nvcf-sub": True}
        assert RequestContext.from_parameters(params) == RequestContext(request_id="r1")

    def test_python_backend_json_string_later_duplicate_wins(self) -> None:
        """In the Python backend's JSON, the later of two equal keys (the header) wins."""
        text = '{"NVCF-REQID": "from-body", "temperature": 0.5, "NVCF-REQID": "from-header"}'
        assert RequestContext.from_parameters(text).request_id == "from-header"

    def test_json_bytes(self) -> None:
        """JSON given as bytes is accepted too."""
        text = json.dumps({"nvcf-reqid": "r2", "nvcf-poll-seconds": "9"}).encode()
        ctx = RequestContext.from_parameters(text)
        assert (ctx.request_id, ctx.poll_seconds) == ("r2", 9)

    @pytest.mark.parametrize("empty", [None, "", b"", {}])
    def test_empty_parameters(self, empty: object) -> None:
        """No parameters at all gives the default context."""
        assert RequestContext.from_parameters(empty) == RequestContext()  # type: ignore[arg-type]

    def test_malformed_json_raises_header_error(self) -> None:
        """Malformed JSON raises HeaderError saying what was expected."""
        with pytest.raises(
            HeaderError, match=r"header parameters is '\{not json': expected a JSON"
        ):
            RequestContext.from_parameters("{not json")

    def test_json_that_is_not_an_object(self) -> None:
        """A JSON array is not a parameter object."""
        with pytest.raises(HeaderError, match="expected a JSON object of request parameters"):
            RequestContext.from_parameters("[1, 2]")

    def test_malformed_value_in_parameters(self) -> None:
        """A malformed header value inside parameters names the header."""
        with pytest.raises(HeaderError, match="NVCF-POLL-SECONDS is '-1'"):
            RequestContext.from_parameters('{"NVCF-POLL-SECONDS": "-1"}')


class TestFromEnv:
    """RequestContext.from_env reads the function identity from NVCF_* variables."""

    def test_every_identity_variable(self) -> None:
        """Each NVCF_* identity variable lands in its field; others are ignored."""
        environ = {
            "NVCF_BACKEND": "b",
            "NVCF_ENV": "e",
            "NVCF_FUNCTION_ID": "fid",
            "NVCF_FUNCTION_NAME": "fname",
            "NVCF_FUNCTION_VERSION_ID": "vid",
            "NVCF_INSTANCETYPE": "it",
            "NVCF_NCA_ID": "nca",
            "NVCF_REGION": "r",
            "NVCF_REQID": "not-an-env-field",
            "PATH": "/bin",
        }
        assert RequestContext.from_env(environ) == RequestContext(
            backend="b",
            env="e",
            function_id="fid",
            function_name="fname",
            function_version_id="vid",
            instance_type="it",
            nca_id="nca",
            region="r",
        )

    def test_reads_os_environ_by_default(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Without an argument the process environment is read."""
        monkeypatch.setenv("NVCF_FUNCTION_NAME", "from-env")
        monkeypatch.setenv("NVCF_REGION", "")
        ctx = RequestContext.from_env()
        assert ctx.function_name == "from-env"
        assert ctx.region is None


class TestImmutabilityAndRoundTrip:
    """A context is frozen and survives to_headers -> from_headers."""

    def test_frozen(self) -> None:
        """Assigning a field raises."""
        ctx = RequestContext(request_id="r")
        with pytest.raises(dataclasses.FrozenInstanceError):
            ctx.request_id = "other"  # type: ignore[misc]

    def test_no_instance_dict(self) -> None:
        """Slots: no attribute can be added either."""
        with pytest.raises((AttributeError, TypeError)):
            RequestContext().extra = 1  # type: ignore[attr-defined]

    def test_to_headers_round_trip(self) -> None:
        """A full context round-trips through its headers."""
        headers = FULL_CONTEXT.to_headers()
        assert RequestContext.from_headers(headers) == FULL_CONTEXT
        assert headers["NVCF-FUNCTION-ASSET-IDS"] == "asset-1,asset-2"
        assert headers["NVCF-POLL-SECONDS"] == "42"

    def test_to_headers_omits_absent_fields(self) -> None:
        """Only fields that are set (plus the size, which always is) become headers."""
        assert RequestContext(request_id="r").to_headers() == {
            "NVCF-REQID": "r",
            "NVCF-MAX-RESPONSE-SIZE-BYTES": str(DEFAULT_MAX_RESPONSE_BYTES),
        }
