"""Request directories: NVCF's paths and modes; output ones reused only when left as given."""

from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path

from nvcf_helpers.local.request_dirs import RequestDirectories


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def _cycle(
    directories: RequestDirectories, request_id: str, work=None, *, assets: bool = False
) -> tuple[Path, Path]:
    asset_dir, output_dir = directories.make(request_id)
    made = [output_dir]
    if assets:
        directories.make_asset_dir(asset_dir)
        made.append(asset_dir)
    if work is not None:
        work(Path(asset_dir), Path(output_dir))
    directories.release(*made)
    return Path(asset_dir), Path(output_dir)


def test_paths_and_modes_are_nvcfs(tmp_path: Path) -> None:
    directories = RequestDirectories(tmp_path)
    for request_id in ("first", "second"):  # the second's output directory is a spare
        asset_dir, output_dir = (Path(path) for path in directories.make(request_id))
        assert asset_dir == tmp_path / "inputAssets" / request_id
        assert output_dir == tmp_path / "response" / request_id
        assert not asset_dir.exists()  # made only for a request with assets
        assert _mode(output_dir) == 0o777
        assert not any(output_dir.iterdir())
        directories.make_asset_dir(str(asset_dir))
        assert _mode(asset_dir) == 0o777  # as NVCF's worker makes it, past the umask
        directories.release(str(asset_dir), str(output_dir))
        assert not asset_dir.exists()
        assert not output_dir.exists()


def test_empty_output_directories_are_reused_not_removed(tmp_path: Path) -> None:
    directories = RequestDirectories(tmp_path)
    _cycle(directories, "first", assets=True)
    # The output directory is kept as a spare; the asset directory is removed.
    assert len(os.listdir(tmp_path / "spare-directories")) == 1
    assert os.listdir(tmp_path / "inputAssets") == []
    _, output_dir = (Path(path) for path in directories.make("second"))
    # The spare was renamed into place: no new directory made.
    assert os.listdir(tmp_path / "spare-directories") == []
    assert output_dir.exists()


def test_a_directory_with_files_is_removed_never_reused(tmp_path: Path) -> None:
    directories = RequestDirectories(tmp_path)

    def leave_files(asset_dir: Path, output_dir: Path) -> None:
        (output_dir / "nested").mkdir()
        (output_dir / "nested" / "result.bin").write_bytes(b"x" * 10)
        (asset_dir / "input.txt").write_text("in")

    _cycle(directories, "first", leave_files, assets=True)
    assert os.listdir(tmp_path / "spare-directories") == []
    assert os.listdir(tmp_path / "response") == []
    assert os.listdir(tmp_path / "inputAssets") == []
    _, output_dir = (Path(path) for path in directories.make("second"))
    assert not any(output_dir.iterdir())


def test_a_directory_whose_mode_changed_is_removed(tmp_path: Path) -> None:
    directories = RequestDirectories(tmp_path)
    _cycle(directories, "first", lambda _, output_dir: output_dir.chmod(0o700))
    assert os.listdir(tmp_path / "spare-directories") == []
    _, output_dir = directories.make("second")
    assert _mode(Path(output_dir)) == 0o777


def test_on_the_loop_directories_go_back_after_the_callbacks_already_due(
    tmp_path: Path,
) -> None:
    directories = RequestDirectories(tmp_path)

    async def cycle() -> list[list[str]]:
        seen = []
        _, output_dir = directories.make("first")
        directories.release(output_dir)
        seen.append(os.listdir(tmp_path / "response"))  # still there: the answer goes first
        await asyncio.sleep(0)
        seen.append(os.listdir(tmp_path / "response"))
        kept = directories.make("second")
        (Path(kept[1]) / "result.bin").write_bytes(b"x")
        directories.release(kept[1])
        await asyncio.sleep(0)
        await directories.close()  # the removal of a directory with files, in a thread
        seen.append(os.listdir(tmp_path / "response"))
        return seen

    assert asyncio.run(cycle()) == [["first"], [], []]
    # The first output directory went back and was reused; the second had a file.
    assert os.listdir(tmp_path / "spare-directories") == []


def test_spares_beyond_the_limit_are_removed(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr("nvcf_helpers.local.request_dirs.MAX_SPARES", 1)
    directories = RequestDirectories(tmp_path)
    made = [directories.make(f"request-{index}") for index in range(3)]
    for _, output_dir in made:
        directories.release(output_dir)  # off the loop: at once
    assert len(os.listdir(tmp_path / "spare-directories")) == 1
    assert os.listdir(tmp_path / "response") == []
