""":class:`NvcfClient`: NVCF's invocation, asset and management API, standard library only.

It follows every answer NVCF gives (200, 202 polling, 302 zips) and raises::

    NvcfHelperError
    └── NvcfClientError          anything that kept the client from a result
        ├── NvcfConnectionError  the API could not be reached
        ├── NvcfApiError         the API answered 4xx/5xx (``status``, ``problem``, ``detail``)
        └── NvcfDeploymentError  a deployment ended ERROR or DEGRADED (``version``, ``error``)
"""

from __future__ import annotations

import base64
import io
import json
import mimetypes
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from nvcf_helpers import names
from nvcf_helpers.errors import NvcfHelperError

__all__ = [
    "DEFAULT_BASE_URL",
    "Asset",
    "InvocationResult",
    "NvcfApiError",
    "NvcfClient",
    "NvcfClientError",
    "NvcfConnectionError",
    "NvcfDeploymentError",
    "Progress",
]

#: NVCF's API.
DEFAULT_BASE_URL = "https://api.nvcf.nvidia.com"
#: NVCF asks callers to poll no more often than this.
MIN_POLL_INTERVAL_SECONDS = 1.0
#: :meth:`NvcfClient.wait_for_deployment` looks again after this, then less and less often...
FIRST_DEPLOYMENT_POLL_SECONDS = 0.25
#: ...up to this (a deployment on NVCF takes minutes, so a slow poll loses nothing).
LAST_DEPLOYMENT_POLL_SECONDS = 10.0

# A function version's states (NVCF's FunctionStatusEnum) that end a wait for its deployment.
_ACTIVE = "ACTIVE"
_FAILED = frozenset({"ERROR", "DEGRADED"})
_NOT_DEPLOYED = frozenset({"INACTIVE", "DELETED"})


class NvcfClientError(NvcfHelperError):
    """The client could not get a result."""


class NvcfConnectionError(NvcfClientError):
    """The API did not answer at all."""


class NvcfApiError(NvcfClientError):
    """The API answered with an error status.

    Attributes:
        status: the HTTP status.
        problem: the problem-details body as a dict (empty if it was not JSON).
        detail: the problem's ``detail``, or the body's text.
        request_id: the ``NVCF-REQID`` of the invocation, when known.
        url: the URL that answered.
    """

    def __init__(
        self,
        status: int,
        problem: dict[str, Any],
        detail: str,
        url: str,
        request_id: str | None = None,
    ) -> None:
        self.status = status
        self.problem = problem
        self.detail = detail
        self.url = url
        self.request_id = request_id
        hint = _HINTS.get(status, "")
        where = f" (request {request_id})" if request_id else ""
        super().__init__(f"{url} answered {status}{where}: {detail}{hint}")


class NvcfDeploymentError(NvcfClientError):
    """A deployment ended ERROR or DEGRADED instead of ACTIVE.

    Attributes:
        version: the function version as the API last described it.
        status: its status, ``ERROR`` or ``DEGRADED``.
        error: why, as the API's ``healthInfo`` says (``None`` if it gave no reason).
        fix: what to do about it, when the API says.
    """

    def __init__(self, version: dict[str, Any], error: str | None, fix: str | None) -> None:
        self.version = version
        self.status = str(version.get("status"))
        self.error = error
        self.fix = fix
        reason = error or "the API gave no reason: read the container's logs"
        advice = f"; fix: {fix}" if fix else ""
        super().__init__(f"{_describe(version)} is {self.status}: {reason}{advice}")


_HINTS = {
    401: "; check the API key (--api-key, NGC_API_KEY or NVCF_API_KEY)",
    403: "; check that the API key may invoke this function",
    404: "; check the function id (GET /v2/nvcf/functions lists them)",
    429: "; NVCF is rate limiting, or the function's queue is full: retry later",
    504: (
        "; no worker took the request within its poll window (the function is busy or "
        f"unhealthy) and NVCF dropped it: retry, or raise {names.POLL_SECONDS} "
        f"(poll_seconds, up to {names.MAX_POLL_SECONDS})"
    ),
}


def encode_metadata(value: str) -> str:
    """A value for an ``x-amz-meta-*`` header: as it is if printable ASCII, else RFC 2047.

    HTTP header values are ASCII; S3 decodes RFC 2047 encoded-words
    (``=?UTF-8?B?...?=``) in metadata, so ``résumé.txt`` travels that way.
    """
    if value.isascii() and value.isprintable() and "=?" not in value:
        return value
    return f"=?UTF-8?B?{base64.b64encode(value.encode('utf-8')).decode('ascii')}?="


def _header_trouble(headers: Mapping[str, str]) -> str | None:
    """Why a header cannot go out over HTTP (not Latin-1, or a line break), or ``None``."""
    for name, value in headers.items():
        try:
            value.encode("latin-1")
        except UnicodeEncodeError:
            return (
                f"header {name} is {value!r}, which HTTP cannot carry (header values are "
                "ASCII): encode it (e.g. percent-encoding) or send it in the body"
            )
        if "\r" in value or "\n" in value:
            return f"header {name} holds a line break ({value!r}): give it on one line"
    return None


class _Headers(Mapping[str, str]):
    """Response headers, looked up case-insensitively."""

    def __init__(self, items: Sequence[tuple[str, str]] = ()) -> None:
        self._items = {name.lower(): (name, value) for name, value in items}

    def __getitem__(self, name: str) -> str:
        return self._items[name.lower()][1]

    def __iter__(self) -> Iterator[str]:
        return (name for name, _ in self._items.values())

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"Headers({dict(self.items())!r})"


@dataclass(frozen=True)
class Progress:
    """One 202 answer while a request is running.

    Attributes:
        request_id: the invocation's ``NVCF-REQID``.
        status: ``NVCF-STATUS`` (``pending-evaluation``, ``in-progress``, ...).
        percent: ``NVCF-PERCENT-COMPLETE``, when sent.
        partial_response: the latest partial response (decoded JSON), or ``None``.
        elapsed: seconds since the invocation was sent.
    """

    request_id: str
    status: str
    percent: int | None
    partial_response: Any
    elapsed: float


@dataclass(frozen=True)
class InvocationResult:
    """A function's result.

    Attributes:
        status: 200, or 302 when the result came as a zip.
        request_id: the ``NVCF-REQID`` (``None`` if NVCF did not send one).
        headers: the final answer's headers (case-insensitive).
        body: the response body (from ``<reqid>.response`` for a zip).
        files: the large outputs from the zip, by relative path.
        asset_ids: the input assets the invocation referenced.
    """

    status: int
    request_id: str | None
    headers: Mapping[str, str]
    body: bytes
    files: Mapping[str, bytes] = field(default_factory=dict)
    asset_ids: tuple[str, ...] = ()

    @property
    def text(self) -> str:
        """The body decoded as UTF-8."""
        return self.body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body decoded as JSON.

        Raises:
            NvcfClientError: the body is not JSON.
        """
        try:
            return json.loads(self.body)
        except ValueError as exc:
            raise NvcfClientError(
                f"the result body is not JSON ({exc}): read .body or .text instead"
            ) from None

    def save_files(self, directory: str | Path) -> list[Path]:
        """Write the large outputs under ``directory`` (created if needed); returns the paths.

        Raises:
            NvcfClientError: a file name in the zip would escape ``directory``.
        """
        root = Path(directory)
        written = []
        for name, data in self.files.items():
            relative = PurePosixPath(name)
            if relative.is_absolute() or ".." in relative.parts:
                raise NvcfClientError(f"refusing to write {name!r}: it escapes {root}")
            target = root.joinpath(*relative.parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            written.append(target)
        return written


@dataclass(frozen=True)
class Asset:
    """An uploaded input asset."""

    asset_id: str
    content_type: str
    description: str


@dataclass(frozen=True)
class _Reply:
    status: int
    headers: _Headers
    body: bytes
    url: str


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Let 302s through: the client follows them itself, without the API key."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class NvcfClient:
    """Talks to NVCF's API, or to ``nvcf-helpers local``.

    Args:
        base_url: the API's root, ``https://api.nvcf.nvidia.com`` by default.
        api_key: the bearer key (an NGC API key for NVCF); ``None`` sends none.
        timeout: socket timeout in seconds for each call, on top of the poll window.
    """

    def __init__(
        self, base_url: str | None = None, api_key: str | None = None, *, timeout: float = 30.0
    ) -> None:
        self.base_url = (base_url or DEFAULT_BASE_URL).rstrip("/")
        self.api_key = api_key
        self.timeout = timeout
        self._opener = urllib.request.build_opener(_NoRedirect)

    def __repr__(self) -> str:
        key = "[secure]" if self.api_key else None
        return f"NvcfClient(base_url={self.base_url!r}, api_key={key!r})"

    # -- plumbing -------------------------------------------------------------------------------

    def _send(
        self,
        method: str,
        url: str,
        *,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        authorised: bool = True,
        timeout: float | None = None,
    ) -> _Reply:
        request = urllib.request.Request(url, data=body, method=method)  # noqa: S310 - http(s) only
        if not url.startswith(("http://", "https://")):
            raise NvcfClientError(f"{url!r} is not an http(s) URL: check the base URL")
        trouble = _header_trouble(headers or {})
        if trouble is not None:
            raise NvcfClientError(trouble)
        for name, value in (headers or {}).items():
            request.add_header(name, value)
        if authorised and self.api_key:
            request.add_header("Authorization", f"Bearer {self.api_key}")
        try:
            with self._opener.open(request, timeout=timeout or self.timeout) as response:
                return _Reply(
                    response.status, _Headers(response.headers.items()), response.read(), url
                )
        except urllib.error.HTTPError as exc:
            with exc:
                data = exc.read()
            return _Reply(exc.code, _Headers(exc.headers.items()), data, url)
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise NvcfConnectionError(
                f"cannot reach {url} ({reason}): check the base URL, and that the API "
                "(or `nvcf-helpers local`) is running"
            ) from None

    def _api(
        self,
        method: str,
        path: str,
        *,
        document: Any = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
        raw: bytes | None = None,
    ) -> _Reply:
        all_headers = {"Accept": "application/json", **(headers or {})}
        body = raw
        if document is not None:
            body = json.dumps(document).encode("utf-8")
        if body is not None:
            all_headers.setdefault("Content-Type", "application/json")
        reply = self._send(
            method, self.base_url + path, body=body, headers=all_headers, timeout=timeout
        )
        if reply.status >= 400:
            raise _api_error(reply)
        return reply

    # -- functions ------------------------------------------------------------------------------

    def list_functions(self) -> list[dict[str, Any]]:
        """The functions the key can see (``GET /v2/nvcf/functions``), one entry per version."""
        functions = _json(self._api("GET", "/v2/nvcf/functions")).get("functions", [])
        return list(functions) if isinstance(functions, list) else []

    def create_function(self, definition: Mapping[str, Any]) -> dict[str, Any]:
        """Register a function (``POST /v2/nvcf/functions``); its first version is INACTIVE.

        Args:
            definition: the function definition, as in a ``function.json``.

        Returns:
            The new version as the API describes it (``id``, ``versionId``, ``status``, ...).

        Raises:
            NvcfApiError: the API refused it (a 400's ``detail`` names every problem).
        """
        reply = self._api("POST", "/v2/nvcf/functions", document=dict(definition))
        return _member(reply, "function")

    def create_version(self, function_id: str, definition: Mapping[str, Any]) -> dict[str, Any]:
        """Register another version of a function (``POST .../functions/{id}/versions``).

        Returns:
            The new version, INACTIVE, as the API describes it.
        """
        path = f"/v2/nvcf/functions/{_segment(function_id)}/versions"
        return _member(self._api("POST", path, document=dict(definition)), "function")

    def list_versions(self, function_id: str) -> list[dict[str, Any]]:
        """The versions of a function (``GET /v2/nvcf/functions/{id}/versions``)."""
        path = f"/v2/nvcf/functions/{_segment(function_id)}/versions"
        versions = _json(self._api("GET", path)).get("functions", [])
        return list(versions) if isinstance(versions, list) else []

    def get_version(self, function_id: str, version_id: str) -> dict[str, Any]:
        """One version's details, its ``status`` and ``healthInfo`` among them."""
        return _member(self._api("GET", _version_path(function_id, version_id)), "function")

    def delete_version(self, function_id: str, version_id: str) -> None:
        """Delete a version (``DELETE /v2/nvcf/functions/{id}/versions/{versionId}``)."""
        self._api("DELETE", _version_path(function_id, version_id))

    # -- deployments ----------------------------------------------------------------------------

    def create_deployment(
        self, function_id: str, version_id: str, specifications: Sequence[Mapping[str, Any]]
    ) -> dict[str, Any]:
        """Deploy an INACTIVE version; it becomes DEPLOYING (``POST /v2/nvcf/deployments/...``).

        Args:
            function_id: the function.
            version_id: the version to deploy.
            specifications: one ``{gpu, instanceType, minInstances, maxInstances,
                maxRequestConcurrency}`` mapping (``backend`` optional) per kind of machine.

        Returns:
            The deployment as the API describes it (``functionStatus``,
            ``deploymentSpecifications``, ...). :meth:`wait_for_deployment` waits
            for it to be ACTIVE.
        """
        return _member(
            self._api(
                "POST", _deployment_path(function_id, version_id), document=_specs(specifications)
            ),
            "deployment",
        )

    def get_deployment(self, function_id: str, version_id: str) -> dict[str, Any]:
        """A version's deployment (``GET /v2/nvcf/deployments/...``); 404 when it has none."""
        return _member(self._api("GET", _deployment_path(function_id, version_id)), "deployment")

    def update_deployment(
        self, function_id: str, version_id: str, specifications: Sequence[Mapping[str, Any]]
    ) -> dict[str, Any]:
        """Change a deployment's specifications (``PUT /v2/nvcf/deployments/...``)."""
        return _member(
            self._api(
                "PUT", _deployment_path(function_id, version_id), document=_specs(specifications)
            ),
            "deployment",
        )

    def delete_deployment(self, function_id: str, version_id: str) -> dict[str, Any]:
        """Undeploy a version (``DELETE /v2/nvcf/deployments/...``).

        Returns:
            The version as the API describes it afterwards (INACTIVE).
        """
        return _member(self._api("DELETE", _deployment_path(function_id, version_id)), "function")

    def supported_gpus(self) -> list[str]:
        """The GPU types the account may deploy on (``GET /v2/nvcf/supportedGpus``)."""
        gpus = _json(self._api("GET", "/v2/nvcf/supportedGpus")).get("gpus", [])
        names_found = []
        for gpu in gpus if isinstance(gpus, list) else []:
            name = (gpu.get("name") or gpu.get("gpu")) if isinstance(gpu, dict) else gpu
            if isinstance(name, str) and name:
                names_found.append(name)
        return names_found

    def wait_for_deployment(
        self,
        function_id: str,
        version_id: str,
        *,
        timeout: float,
        on_status: Callable[[dict[str, Any]], None] | None = None,
    ) -> dict[str, Any]:
        """Poll a deployed version until it is ACTIVE; returns it then.

        Polls :meth:`get_version` often at first, then less often (up to every
        10 s), as a deployment on NVCF takes minutes.

        Args:
            function_id: the function.
            version_id: the deployed version.
            timeout: give up after this many seconds.
            on_status: called with the version each time its status changes (and first).

        Raises:
            NvcfDeploymentError: the version became ERROR or DEGRADED; it carries
                the reason from ``healthInfo``.
            NvcfClientError: the version is not deployed (INACTIVE), or the timeout passed.
        """
        started = time.monotonic()
        pause = FIRST_DEPLOYMENT_POLL_SECONDS
        seen = None
        while True:
            version = self.get_version(function_id, version_id)
            status = version.get("status")
            if status != seen:
                seen = status
                if on_status is not None:
                    on_status(version)
            if status == _ACTIVE:
                return version
            if status in _FAILED:
                raise self._deployment_failed(function_id, version_id, version)
            if status in _NOT_DEPLOYED:
                raise NvcfClientError(
                    f"{_describe(version)} is {status}, so no deployment is under way: deploy "
                    "it first (POST /v2/nvcf/deployments/functions/.../versions/...)"
                )
            left = timeout - (time.monotonic() - started)
            if left <= 0:
                raise NvcfClientError(
                    f"{_describe(version)} is still {status} after {timeout:g} s: wait longer, "
                    "or see how its instances fare in its deployment (get_deployment)"
                )
            time.sleep(min(pause, left))
            pause = min(pause * 1.5, LAST_DEPLOYMENT_POLL_SECONDS)

    def _deployment_failed(
        self, function_id: str, version_id: str, version: dict[str, Any]
    ) -> NvcfDeploymentError:
        """The error for a failed version, with the reason from its (or its deployment's) health."""
        error, fix = _health_problem(version.get("healthInfo"))
        if error is None:
            try:
                deployment = self.get_deployment(function_id, version_id)
            except NvcfClientError:
                deployment = {}
            error, fix = _health_problem(deployment.get("healthInfo"))
        return NvcfDeploymentError(version, error, fix)

    # -- assets ---------------------------------------------------------------------------------

    def upload_asset(
        self,
        source: str | Path | bytes,
        *,
        content_type: str | None = None,
        description: str | None = None,
    ) -> Asset:
        """Create an asset and upload its content, as NVCF requires before an invocation.

        Args:
            source: a file path, or the content itself.
            content_type: defaults to a guess from the file name, else
                ``application/octet-stream``.
            description: defaults to the file name, else ``"input asset"``; any
                text (non-ASCII travels RFC 2047-encoded in the signed header).

        Raises:
            NvcfClientError: the file cannot be read.
            NvcfApiError: the API or the upload URL refused.
        """
        if isinstance(source, bytes):
            data, name = source, None
        else:
            path = Path(source)
            try:
                data = path.read_bytes()
            except OSError as exc:
                raise NvcfClientError(f"cannot read asset {path}: {exc.strerror}") from None
            name = path.name
        if content_type is None:
            guessed = mimetypes.guess_type(name)[0] if name else None
            content_type = guessed or "application/octet-stream"
        description = description or name or "input asset"
        created = _json(
            self._api(
                "POST",
                "/v2/nvcf/assets",
                document={"contentType": content_type, "description": description},
            )
        )
        asset_id, upload_url = created.get("assetId"), created.get("uploadUrl")
        if not isinstance(asset_id, str) or not isinstance(upload_url, str):
            raise NvcfClientError(f"the asset API answered without assetId/uploadUrl: {created}")
        # A pre-signed URL: exactly the signed headers, and never the API key.
        reply = self._send(
            "PUT",
            upload_url,
            body=data,
            headers={
                "Content-Type": content_type,
                names.ASSET_DESCRIPTION: encode_metadata(description),
            },
            authorised=False,
            timeout=max(self.timeout, 300.0),
        )
        if reply.status >= 400:
            raise _api_error(reply)
        return Asset(asset_id, content_type, description)

    def list_assets(self) -> list[dict[str, Any]]:
        """The account's assets (``GET /v2/nvcf/assets``)."""
        assets = _json(self._api("GET", "/v2/nvcf/assets")).get("assets", [])
        return list(assets) if isinstance(assets, list) else []

    def delete_asset(self, asset_id: str) -> None:
        """Delete an asset (``DELETE /v2/nvcf/assets/{assetId}``)."""
        self._api("DELETE", f"/v2/nvcf/assets/{urllib.parse.quote(asset_id)}")

    # -- the local NVCF's logs -------------------------------------------------------------------

    def logs(
        self,
        function_id: str | None = None,
        *,
        version_id: str | None = None,
        request_id: str | None = None,
        level: str | None = None,
        since: str | float | None = None,
        after: int | None = None,
        limit: int | None = None,
    ) -> dict[str, Any]:
        """Container log lines kept by ``nvcf-helpers local`` (``GET /_local/logs``).

        NVCF itself shows logs in its web UI, not through this API.

        Args:
            function_id: only this function's lines.
            version_id: only this version's.
            request_id: only the lines written for this request (``[reqid=...]``).
            level: only lines of this level or above (``DEBUG`` ... ``CRITICAL``).
            since: only lines since this time: seconds ago, or an ISO 8601 time.
            after: only lines after this cursor (the ``next`` of an earlier answer).
            limit: at most this many lines (the API's default: 1000).

        Returns:
            ``{"lines": [...], "next": cursor}``; each line has ``id``, ``time``,
            ``functionId``, ``versionId``, ``instance``, ``level``, ``inference``,
            ``requestId``, ``message`` and ``text`` (the line as written).

        Raises:
            NvcfClientError: the API keeps no logs (it is not a local NVCF), or refused.
        """
        fields = {
            "functionId": function_id,
            "versionId": version_id,
            "requestId": request_id,
            "level": level,
            "since": since,
            "after": after,
            "limit": limit,
        }
        query = urllib.parse.urlencode({k: str(v) for k, v in fields.items() if v is not None})
        try:
            reply = self._api("GET", "/_local/logs" + (f"?{query}" if query else ""))
        except NvcfApiError as exc:
            if exc.status not in (404, 405):
                raise
            raise NvcfClientError(
                f"{self.base_url} keeps no container logs (GET /_local/logs answered "
                f"{exc.status}): only nvcf-helpers local does; on NVCF, read them in the "
                "function's Logs tab"
            ) from None
        document = _json(reply)
        if not isinstance(document.get("lines"), list):
            raise NvcfClientError(f"{reply.url} answered without a 'lines' list")
        return document

    # -- invocation -----------------------------------------------------------------------------

    def invoke(
        self,
        function_id: str,
        body: Any,
        *,
        assets: Sequence[str | Path] = (),
        asset_ids: Sequence[str] = (),
        version_id: str | None = None,
        poll_seconds: int | None = None,
        on_progress: Callable[[Progress], None] | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> InvocationResult:
        """Invoke a function and wait for its result.

        Args:
            function_id: the function to invoke.
            body: a JSON-serialisable value, or ``bytes``/``str`` already encoded.
            assets: files to upload first and reference in the invocation.
            asset_ids: assets uploaded earlier, referenced as they are.
            version_id: a specific version; NVCF picks one when ``None``.
            poll_seconds: ``NVCF-POLL-SECONDS`` for the invocation and each poll
                (how long one call waits for the result; NVCF's default 60, 1 to
                3600; 0 counts as 1).
            on_progress: called with each 202 answer.
            headers: extra headers for the invocation (they reach the container).
            timeout: give up after this many seconds overall (``None``: never).

        Raises:
            NvcfApiError: NVCF or the container answered 4xx/5xx.
            NvcfConnectionError: the API could not be reached.
            NvcfClientError: the timeout passed, or the result was malformed.
        """
        references = list(asset_ids)
        references += [self.upload_asset(path).asset_id for path in assets]
        payload = (
            body
            if isinstance(body, bytes)
            else (
                body.encode("utf-8") if isinstance(body, str) else json.dumps(body).encode("utf-8")
            )
        )
        call_headers = {"Content-Type": "application/json", **(headers or {})}
        if references:
            call_headers[names.INPUT_ASSET_REFERENCES] = ",".join(references)
        if poll_seconds is not None:
            call_headers[names.POLL_SECONDS] = str(poll_seconds)
        call_timeout = self.timeout + (poll_seconds if poll_seconds is not None else 60)
        path = f"/v2/nvcf/pexec/functions/{urllib.parse.quote(function_id)}"
        if version_id is not None:
            path += f"/versions/{urllib.parse.quote(version_id)}"
        started = time.monotonic()
        last_call = started
        reply = self._api("POST", path, raw=payload, headers=call_headers, timeout=call_timeout)
        while reply.status == 202:
            request_id = reply.headers.get(names.REQUEST_ID)
            if not request_id:
                raise NvcfClientError(
                    f"{reply.url} answered 202 without {names.REQUEST_ID}: cannot poll"
                )
            if on_progress is not None:
                on_progress(_progress(reply, request_id, time.monotonic() - started))
            if timeout is not None and time.monotonic() - started > timeout:
                raise NvcfClientError(
                    f"request {request_id} did not finish within {timeout:g} s; poll it later "
                    f"with GET /v2/nvcf/pexec/status/{request_id}"
                )
            time.sleep(max(0.0, last_call + MIN_POLL_INTERVAL_SECONDS - time.monotonic()))
            last_call = time.monotonic()
            poll_headers = {}
            if poll_seconds is not None:
                poll_headers[names.POLL_SECONDS] = str(poll_seconds)
            reply = self._api(
                "GET",
                f"/v2/nvcf/pexec/status/{urllib.parse.quote(request_id)}",
                headers=poll_headers,
                timeout=call_timeout,
            )
        return self._result(reply, tuple(references))

    def _result(self, reply: _Reply, references: tuple[str, ...]) -> InvocationResult:
        request_id = reply.headers.get(names.REQUEST_ID)
        if reply.status not in (301, 302, 303, 307, 308):
            return InvocationResult(
                reply.status, request_id, reply.headers, reply.body, {}, references
            )
        location = reply.headers.get("Location")
        if not location:
            raise NvcfClientError(f"{reply.url} answered {reply.status} without a Location")
        location = urllib.parse.urljoin(reply.url, location)
        # A pre-signed download URL: sending the API key along would be a leak (and S3 refuses).
        download = self._send("GET", location, authorised=False, timeout=max(self.timeout, 300.0))
        if download.status >= 400:
            raise _api_error(download, request_id)
        body, files = _unzip(download.body, request_id)
        return InvocationResult(302, request_id, reply.headers, body, files, references)

    def stream(
        self,
        function_id: str,
        body: Any,
        *,
        version_id: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Iterator[bytes]:
        """Invoke a streaming function (``Accept: text/event-stream``); yields lines as they come.

        Raises:
            NvcfApiError: NVCF or the container answered 4xx/5xx.
            NvcfConnectionError: the API could not be reached.
        """
        path = f"/v2/nvcf/pexec/functions/{urllib.parse.quote(function_id)}"
        if version_id is not None:
            path += f"/versions/{urllib.parse.quote(version_id)}"
        payload = json.dumps(body).encode("utf-8") if not isinstance(body, bytes) else body
        request = urllib.request.Request(self.base_url + path, data=payload, method="POST")  # noqa: S310
        request.add_header("Content-Type", "application/json")
        request.add_header("Accept", "text/event-stream")
        trouble = _header_trouble(headers or {})
        if trouble is not None:
            raise NvcfClientError(trouble)
        for name, value in (headers or {}).items():
            request.add_header(name, value)
        if self.api_key:
            request.add_header("Authorization", f"Bearer {self.api_key}")
        try:
            response = self._opener.open(request, timeout=self.timeout + 300)
        except urllib.error.HTTPError as exc:
            with exc:
                data = exc.read()
            raise _api_error(
                _Reply(exc.code, _Headers(exc.headers.items()), data, request.full_url)
            ) from None
        except (urllib.error.URLError, OSError) as exc:
            raise NvcfConnectionError(
                f"cannot reach {request.full_url} ({getattr(exc, 'reason', exc)}): check the "
                "base URL, and that the API (or `nvcf-helpers local`) is running"
            ) from None
        with response:
            yield from response


def _json(reply: _Reply) -> dict[str, Any]:
    try:
        document = json.loads(reply.body)
    except ValueError:
        raise NvcfClientError(
            f"{reply.url} answered {reply.status} with a body that is not JSON"
        ) from None
    if not isinstance(document, dict):
        raise NvcfClientError(
            f"{reply.url} answered {reply.status} with JSON that is not an object"
        )
    return document


def _member(reply: _Reply, key: str) -> dict[str, Any]:
    """The object under ``key`` of a JSON answer (``{"function": {...}}``)."""
    document = _json(reply)
    member = document.get(key)
    if not isinstance(member, dict):
        raise NvcfClientError(
            f"{reply.url} answered {reply.status} without a {key!r} object: "
            f"{json.dumps(document)[:300]}"
        )
    return member


def _segment(identifier: str) -> str:
    """An id as one path segment (a '/' in it cannot reach another endpoint)."""
    return urllib.parse.quote(identifier, safe="")


def _version_path(function_id: str, version_id: str) -> str:
    return f"/v2/nvcf/functions/{_segment(function_id)}/versions/{_segment(version_id)}"


def _deployment_path(function_id: str, version_id: str) -> str:
    return f"/v2/nvcf/deployments/functions/{_segment(function_id)}/versions/{_segment(version_id)}"


def _specs(specifications: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    return {"deploymentSpecifications": [dict(spec) for spec in specifications]}


def _describe(version: Mapping[str, Any]) -> str:
    """``version V of function NAME (ID)``, from what the API said of a version."""
    name = version.get("name")
    function = f"{name} ({version.get('id')})" if name else str(version.get("id"))
    return f"version {version.get('versionId')} of function {function}"


def _health_problem(info: Any) -> tuple[str | None, str | None]:
    """The ``error`` and ``fix`` of a ``healthInfo`` (an object, or a list of them)."""
    entries = info if isinstance(info, list) else [info]
    for entry in entries:
        if isinstance(entry, dict) and isinstance(entry.get("error"), str) and entry["error"]:
            fix = entry.get("fix")
            return entry["error"], fix if isinstance(fix, str) and fix else None
    return None, None


def _api_error(reply: _Reply, request_id: str | None = None) -> NvcfApiError:
    problem: dict[str, Any] = {}
    try:
        decoded = json.loads(reply.body)
        if isinstance(decoded, dict):
            problem = decoded
    except ValueError:
        pass
    detail = problem.get("detail") or problem.get("title") or problem.get("error")
    if not isinstance(detail, str) or not detail:
        text = reply.body.decode("utf-8", errors="replace").strip()
        detail = text[:500] if text else "no details given"
    return NvcfApiError(
        reply.status,
        problem,
        detail,
        reply.url,
        request_id or reply.headers.get(names.REQUEST_ID) or problem.get("requestId"),
    )


def _progress(reply: _Reply, request_id: str, elapsed: float) -> Progress:
    percent_text = reply.headers.get(names.PERCENT_COMPLETE, "")
    percent = int(percent_text) if percent_text.strip().isdigit() else None
    partial: Any = None
    if reply.body:
        try:
            partial = json.loads(reply.body)
        except ValueError:
            partial = reply.body.decode("utf-8", errors="replace")
    return Progress(request_id, reply.headers.get(names.STATUS, ""), percent, partial, elapsed)


def _unzip(data: bytes, request_id: str | None) -> tuple[bytes, dict[str, bytes]]:
    try:
        bundle = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise NvcfClientError("the large result is not a zip file: download it again") from None
    body = b""
    files: dict[str, bytes] = {}
    with bundle:
        for info in bundle.infolist():
            if info.is_dir():
                continue
            content = bundle.read(info)
            if (
                info.filename.endswith(names.RESPONSE_MEMBER_SUFFIX)
                and "/" not in info.filename
                and (request_id is None or info.filename == names.response_member(request_id))
            ):
                body = content
            else:
                files[info.filename] = content
    return body, files
