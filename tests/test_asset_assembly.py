"""The one assembler of packaged weights (lsg_edge.assets): files inside installed packages joined
into the cache once, checked by a stamp, assembled again when the result was damaged."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import hashlib

from lsg_edge.assets import PackagePart, assemble_once, assemble_package_files, is_assembled
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
    with pytest.raises(ModelError, match=r"model part missing: .*part2 \(package .*; reinstall: pip install test-pkg\)"):
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


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


CHECKED = (
    PackagePart(PACKAGE, "data/model.bin.part1", _digest(b"A" * 5000), "test-pkg-a==1.0"),
    PackagePart(PACKAGE, "data/model.bin.part2", _digest(b"B" * 3000), "test-pkg-b==1.0"),
)


def test_checked_parts_are_joined_when_every_digest_matches(package: Path, tmp_path: Path) -> None:
    target = tmp_path / "cache" / "model.bin"
    assemble_package_files(target, CHECKED, "test-extra", "test model", sha256=_digest(b"A" * 5000 + b"B" * 3000))
    assert target.read_bytes() == b"A" * 5000 + b"B" * 3000 and is_assembled(target)


def test_a_damaged_part_names_its_package_and_leaves_nothing(package: Path, tmp_path: Path) -> None:
    (package / "data" / "model.bin.part2").write_bytes(b"B" * 2999 + b"X")  # same size, one byte changed
    target = tmp_path / "cache" / "model.bin"
    with pytest.raises(ModelError, match=r"model.bin.part2 of package test-pkg-b==1.0 is damaged .*"
                                         r"pip install --force-reinstall test-pkg-b==1.0") as error:
        assemble_package_files(target, CHECKED, "test-extra", "test model")
    assert "\n" not in str(error.value)
    assert os.listdir(target.parent) == []


def test_a_wrong_whole_digest_is_refused(package: Path, tmp_path: Path) -> None:
    target = tmp_path / "cache" / "model.bin"
    with pytest.raises(ModelError, match="joined file's sha256 is not the recorded one"):
        assemble_package_files(target, CHECKED, "test-extra", "test model", sha256=_digest(b"other"))
    assert os.listdir(target.parent) == []


def test_a_missing_checked_package_names_its_pip_requirement(tmp_path: Path) -> None:
    part = PackagePart("lsg_edge_no_such_pkg", "x", None, "no-such-pkg==2.0")
    with pytest.raises(ModelError, match=r"no-such-pkg==2.0 \(lsg_edge_no_such_pkg\) is not installed: pip install test-extra"):
        assemble_package_files(tmp_path / "m.bin", [part], "test-extra", "test model")
