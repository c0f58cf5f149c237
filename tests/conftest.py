"""Shared fixtures — the real default model (assembled from its PyPI package) and the shared
evaluation data — and the markers that select tests by the real models they load."""

from __future__ import annotations

from pathlib import Path

import pytest

from lsg_edge.runtimes import import_onnxruntime
from tests.helpers.markers import MARKER_ATTRIBUTE, MODEL, loads

# The suite needs both native runtimes in one process: onnxruntime first, before any test loads
# llama.cpp, because the other order crashes CUDA builds (lsg_edge/runtimes.py).
import_onnxruntime()

REPO = Path(__file__).resolve().parents[1]
# The evaluation data lives outside the repository, in a `shared/data` folder beside the checkout
# (CI uses the same layout) or inside it.
DATA_CANDIDATES = (REPO.parent / "shared" / "data", REPO / "shared" / "data")
DATA_SETS = ("wmt15-deen-dev", "librispeech-dev", "fr-en-speech-samples")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Each test gets the marker of every fixture it uses that loads a real model (`loads`)."""
    for item in items:
        fixture_info = getattr(item, "_fixtureinfo", None)
        if fixture_info is None:
            continue
        for name in item.fixturenames:
            definitions = fixture_info.name2fixturedefs.get(name)
            # The last definition is the one in effect: a module's own `engine` hides conftest's.
            marker = getattr(definitions[-1].func, MARKER_ATTRIBUTE, None) if definitions else None
            if marker is not None:
                item.add_marker(marker)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The shared evaluation data. Its absence fails the test that needs it (never a skip): a
    checkout without the data must not pass by testing less."""
    for candidate in DATA_CANDIDATES:
        if candidate.is_dir():
            missing = [name for name in DATA_SETS if not (candidate / name).is_dir()]
            if missing:
                pytest.fail(f"the shared evaluation data at {candidate} lacks {', '.join(missing)}", pytrace=False)
            return candidate
    pytest.fail(
        "the shared evaluation data is missing: expected a shared/data folder beside the repository or "
        f"inside it ({' or '.join(str(c) for c in DATA_CANDIDATES)})",
        pytrace=False,
    )


@pytest.fixture(scope="session")
def wmt_pairs(data_dir: Path) -> list[tuple[str, str]]:
    de = (data_dir / "wmt15-deen-dev" / "de.txt").read_text(encoding="utf-8").splitlines()
    en = (data_dir / "wmt15-deen-dev" / "en.txt").read_text(encoding="utf-8").splitlines()
    return list(zip(de, en))


@pytest.fixture(scope="session")
@loads(MODEL)
def engine():
    from lsg_edge import TranslationEngine

    with TranslationEngine.load() as loaded:
        yield loaded


@pytest.fixture(scope="session")
@loads(MODEL)
def default_gguf(engine) -> Path:
    return engine.model.path
