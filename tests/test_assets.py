"""Tests for nvcf_helpers.assets: safe asset ids, reading, listing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from nvcf_helpers import (
    AssetError,
    AssetNotFoundError,
    InvalidInputError,
    MissingContextError,
    NvcfHelperError,
    RequestContext,
    asset_path,
    list_assets,
    open_asset,
    read_asset,
)


@pytest.fixture
def ctx(tmp_path: Path) -> RequestContext:
    """A request whose asset directory holds two assets, beside a secret file outside it."""
    assets = tmp_path / "assets"
    assets.mkdir()
    (assets / "b-asset").write_bytes(b"second")
    (assets / "a-asset").write_bytes(b"first")
    (tmp_path / "secret.txt").write_bytes(b"not an asset")
    return RequestContext(request_id="r", asset_dir=assets, asset_ids=("a-asset", "b-asset"))


class TestUnsafeIds:
    """Ids that are not plain file names are refused with AssetError."""

    @pytest.mark.parametrize(
        "asset_id",
        ["../secret.txt", "..", ".", "a/b", "/etc/passwd", "a\\b", "a\0b", "sub/../a-asset"],
    )
    def test_refused_as_not_a_plain_name(self, ctx: RequestContext, asset_id: str) -> None:
        """Traversal, absolute paths, separators, NUL, '.' and '..' are refused."""
        with pytest.raises(AssetError, match="is not a plain name: asset ids are file names"):
            asset_path(ctx, asset_id)
        with pytest.raises(AssetError, match="is not a plain name"):
            read_asset(ctx, asset_id)

    def test_empty(self, ctx: RequestContext) -> None:
        """An empty id is refused, saying so."""
        with pytest.raises(AssetError, match="asset id '' is empty: pass the id NVCF gave"):
            asset_path(ctx, "")

    def test_too_long(self, ctx: RequestContext) -> None:
        """An id longer than a file name can be is an AssetError, not an OSError."""
        with pytest.raises(AssetError, match="is 256 bytes long: file names hold at most 255"):
            read_asset(ctx, "é" * 128)

    def test_not_encodable(self, ctx: RequestContext) -> None:
        """An id holding a lone surrogate is an AssetError, not a UnicodeEncodeError."""
        with pytest.raises(AssetError, match="cannot be encoded as a file name"):
            asset_path(ctx, "a\ud800b")

    def test_asset_error_is_a_client_error(self, ctx: RequestContext) -> None:
        """AssetError is an InvalidInputError and an NvcfHelperError."""
        with pytest.raises(InvalidInputError):
            asset_path(ctx, "..")

    def test_symlink_pointing_outside(self, ctx: RequestContext) -> None:
        """A link inside the directory that resolves outside it is refused."""
        assert ctx.asset_dir is not None
        (ctx.asset_dir / "escape").symlink_to(ctx.asset_dir.parent / "secret.txt")
        with pytest.raises(AssetError, match=r"'escape' resolves outside .*refusing to follow"):
            asset_path(ctx, "escape")
        with pytest.raises(AssetError, match="resolves outside"):
            read_asset(ctx, "escape")

    def test_dangling_symlink_pointing_outside(self, ctx: RequestContext) -> None:
        """A link to a path outside that does not exist yet is refused too."""
        assert ctx.asset_dir is not None
        (ctx.asset_dir / "later").symlink_to(ctx.asset_dir.parent / "not-yet")
        with pytest.raises(AssetError, match="resolves outside"):
            asset_path(ctx, "later")

    def test_symlink_inside_is_followed(self, ctx: RequestContext) -> None:
        """A link to another file in the same directory is an ordinary asset."""
        assert ctx.asset_dir is not None
        (ctx.asset_dir / "alias").symlink_to("a-asset")
        assert asset_path(ctx, "alias") == ctx.asset_dir / "alias"
        assert read_asset(ctx, "alias") == b"first"


class TestReading:
    """Valid ids read the delivered files."""

    def test_asset_path(self, ctx: RequestContext) -> None:
        """The path is the id directly inside the asset directory."""
        assert ctx.asset_dir is not None
        assert asset_path(ctx, "a-asset") == ctx.asset_dir / "a-asset"

    def test_read_asset(self, ctx: RequestContext) -> None:
        """read_asset returns the whole content."""
        assert read_asset(ctx, "b-asset") == b"second"

    def test_open_asset_streams(self, ctx: RequestContext) -> None:
        """open_asset returns a binary stream over the content."""
        with open_asset(ctx, "a-asset") as stream:
            assert stream.read(2) == b"fi"
            assert stream.read() == b"rst"

    def test_missing_asset(self, ctx: RequestContext) -> None:
        """A valid id with no file raises AssetNotFoundError naming what was sent."""
        with pytest.raises(AssetNotFoundError) as caught:
            read_asset(ctx, "c-asset")
        message = str(caught.value)
        assert "asset 'c-asset' was not delivered" in message
        assert "the request named a-asset, b-asset" in message
        assert "NVCF-INPUT-ASSET-REFERENCES" in message
        assert isinstance(caught.value, NvcfHelperError)
        assert isinstance(caught.value, AssetError)
        assert isinstance(caught.value, FileNotFoundError)

    def test_missing_asset_when_none_named(self, tmp_path: Path) -> None:
        """Without NVCF-FUNCTION-ASSET-IDS the message says no asset was named."""
        ctx = RequestContext(asset_dir=tmp_path)
        with pytest.raises(AssetNotFoundError, match="the request named no assets"):
            open_asset(ctx, "x")

    def test_directory_is_not_an_asset(self, ctx: RequestContext) -> None:
        """A sub-directory of the asset directory is reported as not found."""
        assert ctx.asset_dir is not None
        (ctx.asset_dir / "subdir").mkdir()
        with pytest.raises(AssetNotFoundError, match="'subdir' was not delivered"):
            read_asset(ctx, "subdir")

    def test_list_assets_sorted_files_only(self, ctx: RequestContext) -> None:
        """list_assets returns the file names, sorted, skipping directories."""
        assert ctx.asset_dir is not None
        (ctx.asset_dir / "0-subdir").mkdir()
        (ctx.asset_dir / "0-file").write_bytes(b"")
        assert list_assets(ctx) == ["0-file", "a-asset", "b-asset"]

    def test_list_assets_of_missing_directory(self, tmp_path: Path) -> None:
        """A directory the worker did not create holds no assets."""
        assert list_assets(RequestContext(asset_dir=tmp_path / "absent")) == []


class TestMissingAssetDir:
    """Without NVCF-ASSET-DIR nothing can be read."""

    @pytest.mark.parametrize(
        "call",
        [
            lambda ctx: asset_path(ctx, "a"),
            lambda ctx: read_asset(ctx, "a"),
            lambda ctx: open_asset(ctx, "a"),
            list_assets,
        ],
    )
    def test_missing_context(self, call: object) -> None:
        """Each function raises MissingContextError naming the header."""
        assert callable(call)
        with pytest.raises(MissingContextError, match="header NVCF-ASSET-DIR is missing"):
            call(RequestContext())


@pytest.fixture(scope="module")
def prop_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An asset directory with a file, a link inside and two links out, for every example."""
    root = tmp_path_factory.mktemp("asset-property")
    assets = root / "assets"
    assets.mkdir()
    (assets / "file").write_bytes(b"x")
    (root / "outside").write_bytes(b"y")
    (assets / "inside").symlink_to("file")
    (assets / "out").symlink_to("../outside")
    (assets / "abs").symlink_to(root)
    return assets


# database=None: no .hypothesis/ directory, as tests write only under tmp dirs.
class TestAssetIdProperty:
    """Property test: no asset id ever yields a path outside the asset directory."""

    @settings(database=None, deadline=None, max_examples=300)
    @given(
        asset_id=st.one_of(
            st.text(),
            st.text(alphabet="./\\\0ab"),
            st.sampled_from(["file", "inside", "out", "abs", "..", "../outside"]),
        )
    )
    @example("a" * 256)
    @example("\udcff")
    @example(os.sep.join(["..", "..", "etc", "passwd"]))
    def test_path_stays_inside_or_asset_error(self, prop_dir: Path, asset_id: str) -> None:
        """asset_path returns a path directly inside the directory or raises AssetError."""
        ctx = RequestContext(asset_dir=prop_dir)
        try:
            path = asset_path(ctx, asset_id)
        except AssetError:
            return
        assert path.parent == prop_dir
        assert path.name == asset_id
        assert path.resolve().parent == prop_dir.resolve()


class TestListingAgreesWithReading:
    def test_symlink_out_of_the_directory_is_not_listed(self, tmp_path: Path) -> None:
        """list_assets leaves out a link that read_asset would refuse, and keeps one inside."""
        from nvcf_helpers import RequestContext, list_assets

        asset_dir = tmp_path / "assets"
        asset_dir.mkdir()
        outside = tmp_path / "secret.txt"
        outside.write_text("not an asset")
        (asset_dir / "plain").write_text("a")
        (asset_dir / "escape").symlink_to(outside)
        (asset_dir / "alias").symlink_to(asset_dir / "plain")
        ctx = RequestContext(asset_dir=asset_dir)
        assert list_assets(ctx) == ["alias", "plain"]
