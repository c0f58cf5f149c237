"""The tiny-model harness itself (tests/helpers/tiny_models.py): llama.cpp's logits on each tiny
base GGUF equal the independent NumPy reference's."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.helpers.tiny_models import (
    ARCHITECTURES,
    F32_LOGITS_ATOL,
    TOKENS,
    interleave_rotary_rows,
    llama_logits,
    make_hf_weights,
    max_abs_diff,
    reference_logits,
    tiny_spec,
    write_tiny_gguf,
)


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_tiny_base_model_matches_reference(arch: str, tmp_path: Path) -> None:
    spec = tiny_spec(arch)
    weights = make_hf_weights(spec)
    path = write_tiny_gguf(spec, weights, tmp_path / "base.gguf")
    got = llama_logits(path)
    want = reference_logits(spec, weights, TOKENS)
    assert np.std(want) > 0.5, "logits too flat to prove anything"
    assert max_abs_diff(got, want) <= F32_LOGITS_ATOL, f"{arch}: {max_abs_diff(got, want):.2e}"


def test_rotary_interleave_is_the_llama_cpp_order() -> None:
    rows = np.arange(8)[:, None]  # one head of 8 rows
    assert interleave_rotary_rows(rows, 1)[:, 0].tolist() == [0, 4, 1, 5, 2, 6, 3, 7]
