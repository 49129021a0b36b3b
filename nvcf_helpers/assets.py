"""Input assets: the files NVCF's worker downloads into ``NVCF-ASSET-DIR``.

A caller names assets by id (``NVCF-INPUT-ASSET-REFERENCES``) and each one
arrives as the file ``<NVCF-ASSET-DIR>/<assetId>``. The id is chosen by the
caller, so it is untrusted: an id that is a path, climbs out with ``..``, or
resolves outside the asset directory through a symlink is refused here
rather than joined onto a path.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO

from nvcf_helpers import names
from nvcf_helpers.context import RequestContext
from nvcf_helpers.errors import AssetError, AssetNotFoundError, MissingContextError

__all__ = ["asset_path", "list_assets", "open_asset", "read_asset"]

# The longest file name, in bytes, that Linux filesystems accept.
_NAME_MAX = 255


def _asset_dir(ctx: RequestContext) -> Path:
    if ctx.asset_dir is None:
        raise MissingContextError(names.ASSET_DIR, "reading input assets")
    return ctx.asset_dir


def _check_asset_id(asset_id: object) -> str:
    if not isinstance(asset_id, str) or not asset_id:
        raise AssetError(f"asset id {asset_id!r} is empty: pass the id NVCF gave the asset")
    unsafe = (
        "\0" in asset_id
        or "/" in asset_id
        or (os.altsep is not None and os.altsep in asset_id)
        or "\\" in asset_id
        or asset_id in (".", "..")
    )
    if unsafe or os.path.isabs(asset_id):
        raise AssetError(
            f"asset id {asset_id!r} is not a plain name: asset ids are file names inside "
            f"{names.ASSET_DIR}, without separators, '..' or NUL"
        )
    # Checked here so that the filesystem calls below cannot fail with an
    # OSError (name too long) or a UnicodeEncodeError on a caller's id.
    try:
        size = len(os.fsencode(asset_id))
    except UnicodeEncodeError:
        raise AssetError(
            f"asset id {asset_id!r} cannot be encoded as a file name: pass the id NVCF gave "
            "the asset"
        ) from None
    if size > _NAME_MAX:
        raise AssetError(
            f"asset id {asset_id[:40]!r}... is {size} bytes long: file names hold at most "
            f"{_NAME_MAX} bytes; pass the id NVCF gave the asset"
        )
    return asset_id


def asset_path(ctx: RequestContext, asset_id: str) -> Path:
    """The path of input asset ``asset_id`` inside the request's asset directory.

    Raises:
        AssetError: the id is empty, a path, ``..``, holds a NUL, or resolves
            (through a symlink) outside the asset directory.
        MissingContextError: the request has no ``NVCF-ASSET-DIR``.
    """
    asset_id = _check_asset_id(asset_id)
    directory = _asset_dir(ctx)
    path = directory / asset_id
    if path.is_symlink() or path.exists():
        # The worker writes plain files; a link pointing elsewhere is not an asset.
        resolved_dir = directory.resolve()
        if path.resolve().parent != resolved_dir:
            raise AssetError(
                f"asset {asset_id!r} resolves outside {directory}: refusing to follow the link"
            )
    return path


def open_asset(ctx: RequestContext, asset_id: str) -> BinaryIO:
    """Open an input asset for reading in binary mode (stream large assets with this).

    Raises:
        AssetNotFoundError: the id is valid but no such asset was delivered.
        AssetError: as for :func:`asset_path`.
    """
    path = asset_path(ctx, asset_id)
    try:
        return path.open("rb")
    except (FileNotFoundError, IsADirectoryError):
        raise _not_found(ctx, asset_id) from None


def read_asset(ctx: RequestContext, asset_id: str) -> bytes:
    """Read a whole input asset.

    Raises:
        AssetNotFoundError: the id is valid but no such asset was delivered.
        AssetError: as for :func:`asset_path`.
    """
    with open_asset(ctx, asset_id) as stream:
        return stream.read()


def list_assets(ctx: RequestContext) -> list[str]:
    """The ids of the assets delivered with this request, sorted.

    Only ids that :func:`read_asset` would accept are listed: a symlink that
    leads out of the asset directory is left out.

    Raises:
        MissingContextError: the request has no ``NVCF-ASSET-DIR``.
    """
    directory = _asset_dir(ctx)
    try:
        entries = [entry for entry in os.scandir(directory) if entry.is_file()]
    except FileNotFoundError:
        return []
    inside = directory.resolve()
    return sorted(
        entry.name
        for entry in entries
        if not entry.is_symlink() or Path(entry.path).resolve().parent == inside
    )


def _not_found(ctx: RequestContext, asset_id: str) -> AssetNotFoundError:
    hint = (
        f"the request named {', '.join(ctx.asset_ids)}"
        if ctx.asset_ids
        else "the request named no assets"
    )
    return AssetNotFoundError(
        f"asset {asset_id!r} was not delivered to {ctx.asset_dir} ({hint}): upload it and "
        f"list its id in the {names.INPUT_ASSET_REFERENCES} header of the invocation"
    )
