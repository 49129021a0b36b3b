"""Input assets: NVCF's create-then-upload flow, kept on local disk.

``POST /v2/nvcf/assets`` creates an id and a pre-signed upload URL; the caller
``PUT``\\ s the file there with exactly the ``Content-Type`` and
``x-amz-meta-nvcf-asset-description`` headers the asset was created with (S3
refuses anything else with 403). HTTP headers carry ASCII, so a description
with other characters travels RFC 2047-encoded (``=?UTF-8?B?...?=``), which S3
decodes before it compares and stores metadata. An invocation that names the
asset in ``NVCF-INPUT-ASSET-REFERENCES`` gets a copy of it in its asset
directory.
"""

from __future__ import annotations

import email.errors
import email.header
import secrets
import shutil
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["AssetRecord", "AssetStore", "UnknownAssetError", "decode_metadata"]


def decode_metadata(value: str) -> str:
    """An ``x-amz-meta-*`` header value as S3 stores it: RFC 2047 encoded-words decoded.

    Plain values (ASCII, or UTF-8 as sent by curl) come back unchanged.
    """
    if "=?" not in value:
        return value
    try:
        return str(email.header.make_header(email.header.decode_header(value)))
    except (email.errors.HeaderParseError, LookupError, UnicodeDecodeError, ValueError):
        return value


class UnknownAssetError(LookupError):
    """An invocation names an asset that does not exist or was never uploaded."""


@dataclass
class AssetRecord:
    """One asset: what it was created with, and whether its content arrived."""

    asset_id: str
    content_type: str
    description: str
    token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    uploaded: bool = False
    size: int = 0
    created_at: float = field(default_factory=time.time)

    def to_json(self) -> dict[str, Any]:
        """The asset as NVCF's asset API lists it."""
        return {
            "assetId": self.asset_id,
            "contentType": self.content_type,
            "description": self.description,
        }


class AssetStore:
    """Assets of this local NVCF, stored as files under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._records: dict[str, AssetRecord] = {}

    def create(self, content_type: str, description: str) -> AssetRecord:
        """Register a new asset whose content is still to be uploaded."""
        record = AssetRecord(str(uuid.uuid4()), content_type, description)
        self._records[record.asset_id] = record
        return record

    def get(self, asset_id: str) -> AssetRecord | None:
        """The asset, or ``None``."""
        return self._records.get(asset_id)

    def records(self) -> list[AssetRecord]:
        """Every asset, oldest first."""
        return list(self._records.values())

    def path(self, asset_id: str) -> Path:
        """Where the asset's content lives."""
        return self.root / asset_id

    def delete(self, asset_id: str) -> bool:
        """Remove an asset; ``False`` if there was none."""
        record = self._records.pop(asset_id, None)
        if record is None:
            return False
        self.path(asset_id).unlink(missing_ok=True)
        return True

    def check_references(self, asset_ids: list[str]) -> None:
        """Make sure every named asset exists and holds uploaded content.

        Raises:
            UnknownAssetError: naming the first asset that does not.
        """
        for asset_id in asset_ids:
            record = self._records.get(asset_id)
            if record is None:
                raise UnknownAssetError(
                    f"asset {asset_id!r} does not exist: create it with POST /v2/nvcf/assets "
                    "and upload it before invoking"
                )
            if not record.uploaded:
                raise UnknownAssetError(
                    f"asset {asset_id!r} was created but never uploaded: PUT its content to "
                    "the uploadUrl first"
                )

    def copy_into(self, asset_ids: list[str], directory: Path) -> None:
        """Copy each asset to ``directory/<assetId>``, as NVCF's worker downloads them."""
        for asset_id in asset_ids:
            shutil.copyfile(self.path(asset_id), directory / asset_id)
