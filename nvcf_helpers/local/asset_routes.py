"""Assets, and the stand-ins for the pre-signed S3 URLs NVCF hands out (uploads, result zips)."""

from __future__ import annotations

import asyncio
import hmac
import logging
from pathlib import Path
from typing import Any

from aiohttp import web

from nvcf_helpers import names
from nvcf_helpers.local.api_base import ApiBase
from nvcf_helpers.local.asset_store import decode_metadata
from nvcf_helpers.local.problems import ApiError

__all__ = ["AssetRoutes"]

#: The largest asset S3 would take (5 GB).
MAX_ASSET_BYTES = 5 * 1000 * 1000 * 1000

logger = logging.getLogger("nvcf_helpers.local")


class AssetRoutes(ApiBase):
    """``/v2/nvcf/assets`` and the ``/_local/`` upload and download URLs (a token, no API key)."""

    async def create_asset(self, request: web.Request) -> web.Response:
        """``POST /v2/nvcf/assets`` with ``{"contentType", "description"}``."""
        try:
            document: Any = await request.json()
        except ValueError:
            document = None
        if not isinstance(document, dict) or not all(
            isinstance(document.get(key), str) and document.get(key)
            for key in ("contentType", "description")
        ):
            raise ApiError(
                400,
                "the body must be a JSON object with string 'contentType' and 'description', "
                'e.g. {"contentType": "image/png", "description": "input image"}',
            )
        record = self.assets.create(document["contentType"], document["description"])
        upload_url = (
            f"{request.scheme}://{request.host}/_local/uploads/{record.asset_id}/{record.token}"
        )
        return web.json_response({**record.to_json(), "uploadUrl": upload_url})

    async def list_assets(self, request: web.Request) -> web.Response:
        """``GET /v2/nvcf/assets``."""
        return web.json_response({"assets": [record.to_json() for record in self.assets.records()]})

    async def get_asset(self, request: web.Request) -> web.Response:
        """``GET /v2/nvcf/assets/{assetId}``."""
        record = self.assets.get(request.match_info["asset_id"])
        if record is None:
            raise ApiError(404, f"asset {request.match_info['asset_id']} not found")
        return web.json_response({"asset": record.to_json()})

    async def delete_asset(self, request: web.Request) -> web.Response:
        """``DELETE /v2/nvcf/assets/{assetId}``."""
        if not self.assets.delete(request.match_info["asset_id"]):
            raise ApiError(404, f"asset {request.match_info['asset_id']} not found")
        return web.Response(status=204)

    async def upload(self, request: web.Request) -> web.Response:
        """The stand-in for an asset's pre-signed upload URL (an S3 ``PUT``).

        The signed ``x-amz-meta-nvcf-asset-description`` may carry non-ASCII
        text RFC 2047-encoded, as S3 takes metadata (or as raw UTF-8).
        """
        record = self.assets.get(request.match_info["asset_id"])
        if record is None or not hmac.compare_digest(
            record.token.encode(), request.match_info["token"].encode()
        ):
            raise ApiError(403, "the upload URL is not valid: create the asset again")
        sent_description = request.headers.get(names.ASSET_DESCRIPTION)
        for header, sent, expected in (
            ("Content-Type", request.headers.get("Content-Type"), record.content_type),
            (
                names.ASSET_DESCRIPTION,
                None if sent_description is None else decode_metadata(sent_description),
                record.description,
            ),
        ):
            if sent != expected:
                raise ApiError(
                    403,
                    f"the signature does not match: header {header} is {sent!r} but the asset "
                    f"was created with {expected!r}; send exactly the signed headers",
                )
        if request.content_length is not None and request.content_length > MAX_ASSET_BYTES:
            raise ApiError(413, f"an asset holds at most {MAX_ASSET_BYTES} bytes")
        record.size = await self._store_upload(request, self.assets.path(record.asset_id))
        record.uploaded = True
        return web.Response(status=200)

    async def _store_upload(self, request: web.Request, path: Path) -> int:
        partial = path.with_name(path.name + ".upload")
        size = 0
        try:
            with partial.open("wb") as stream:
                async for chunk in request.content.iter_chunked(1 << 20):
                    size += len(chunk)
                    if size > MAX_ASSET_BYTES:
                        raise ApiError(413, f"an asset holds at most {MAX_ASSET_BYTES} bytes")
                    await asyncio.to_thread(stream.write, chunk)
            partial.replace(path)
        finally:
            partial.unlink(missing_ok=True)
        return size

    async def download(self, request: web.Request) -> web.StreamResponse:
        """The stand-in for the pre-signed URL of a large result's zip."""
        path = self.cloud.files.zips.get(request.match_info["token"])
        if path is None or not path.exists():
            raise ApiError(
                404,
                "no such result: the link is wrong, expired (--result-ttl) or the local NVCF "
                "restarted",
            )
        return web.FileResponse(path, headers={"Content-Type": "application/zip"})
