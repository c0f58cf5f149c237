"""Shared fixtures: the real default model (assembled from its PyPI package) and the shared data."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # test helpers (toy_model) import as top-level modules

from lsg_edge.runtimes import import_onnxruntime  # noqa: E402

# The suite needs both native runtimes in one process: onnxruntime first, before any test loads
# llama.cpp, because the other order crashes CUDA builds (lsg_edge/runtimes.py).
import_onnxruntime()

REPO = Path(__file__).resolve().parents[1]


def shared_data() -> Path:
    """../shared/data beside the checkout (the same layout in CI)."""
    for candidate in (REPO.parent / "shared" / "data", REPO / "shared" / "data"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError("../shared/data not found beside the repository")


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return shared_data()


@pytest.fixture(scope="session")
def wmt_pairs(data_dir) -> list[tuple[str, str]]:
    de = (data_dir / "wmt15-deen-dev" / "de.txt").read_text(encoding="utf-8").splitlines()
    en = (data_dir / "wmt15-deen-dev" / "en.txt").read_text(encoding="utf-8").splitlines()
    return list(zip(de, en))


@pytest.fixture(scope="session")
def engine():
    from lsg_edge import TranslationEngine

    with TranslationEngine.load() as loaded:
        yield loaded


@pytest.fixture(scope="session")
def default_gguf(engine) -> Path:
    return engine.model.path
