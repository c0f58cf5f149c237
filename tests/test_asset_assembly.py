"""The one assembler of packaged weights (lsg_edge.assets): files inside installed packages joined
into the cache once, checked by a stamp, assembled again when the result was damaged."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lsg_edge.assets import assemble_once, assemble_package_files, is_assembled
from lsg_edge.errors import ModelError

PACKAGE = "lsg_edge_test_weights_pkg"


@pytest.fixture()
def package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A real importable package (on sys.path) that ships a model in two parts and a vocabulary."""
    folder = tmp_path / "site" / PACKAGE
    (folder / "data").mkdir(parents=True)
    (folder / "__init__.py").write_text("")
    (folder / "data" / "model.bin.part1").write_bytes(b"A" * 5000)
    (folder / "data" / "model.bin.part2").write_bytes(b"B" * 3000)
    (folder / "data" / "vocabulary.txt").write_text("hello\n")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    return folder


PARTS = ((PACKAGE, "data/model.bin.part1"), (PACKAGE, "data/model.bin.part2"))
BESIDE = ((PACKAGE, "data/vocabulary.txt"), (PACKAGE, "data/tokenizer.json"))


def test_parts_are_joined_in_order_once(package: Path, tmp_path: Path) -> None:
    target = tmp_path / "cache" / "m" / "model.bin"
    assert assemble_package_files(target, PARTS, "test-pkg", "test model", beside=BESIDE) == target
    assert target.read_bytes() == b"A" * 5000 + b"B" * 3000
    assert (target.parent / "vocabulary.txt").read_text() == "hello\n"
    assert not (target.parent / "tokenizer.json").exists()  # absent from the package: skipped
    assert is_assembled(target)
    written = target.stat().st_mtime_ns
    assemble_package_files(target, PARTS, "test-pkg", "test model", beside=BESIDE)
    assert target.stat().st_mtime_ns == written


def test_a_damaged_result_is_assembled_again(package: Path, tmp_path: Path) -> None:
    target = tmp_path / "cache" / "model.bin"
    assemble_package_files(target, PARTS, "test-pkg", "test model")
    with open(target, "r+b") as f:
        f.truncate(100)
    assert not is_assembled(target)
    assemble_package_files(target, PARTS, "test-pkg", "test model")
    assert target.stat().st_size == 8000 and is_assembled(target)


def test_missing_package_or_part_is_a_model_error(package: Path, tmp_path: Path) -> None:
    target = tmp_path / "cache" / "model.bin"
    with pytest.raises(ModelError, match="not installed: pip install other-pkg"):
        assemble_package_files(target, (("lsg_edge_no_such_pkg", "x"),), "other-pkg", "test model")
    (package / "data" / "model.bin.part2").unlink()
    with pytest.raises(ModelError, match=r"model part missing: .*part2 \(reinstall: pip install test-pkg\)"):
        assemble_package_files(target, PARTS, "test-pkg", "test model")
    assert not target.parent.exists() or list(target.parent.iterdir()) == []


def test_a_failed_write_leaves_nothing_behind(tmp_path: Path) -> None:
    target = tmp_path / "cache" / "model.bin"

    def write(partial: Path) -> None:
        partial.write_bytes(b"half")
        raise ValueError("checksum mismatch")

    with pytest.raises(ModelError, match="could not assemble test model into .*: checksum mismatch"):
        assemble_once(target, write, "test model")
    assert os.listdir(target.parent) == []
