"""llama_decode's return codes become the project's typed errors, each one line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lsg_edge.backends.llama import LlamaModel, LlamaOptions, decode_error
from lsg_edge.errors import ContextOverflow, ModelError


@pytest.mark.parametrize("code, overflow", [(1, True), (2, False), (-1, False), (-3, False), (7, False)])
def test_each_return_code_is_a_typed_one_line_error(code: int, overflow: bool) -> None:
    error = decode_error(code, n_tokens=12, n_ctx=64)
    assert isinstance(error, ModelError) and isinstance(error, ContextOverflow) == overflow
    assert "\n" not in str(error) and "12 tokens" in str(error)
    assert error.exit_code == 2


def test_a_full_kv_cache_is_a_context_overflow_and_the_context_stays_usable(default_gguf: Path) -> None:
    options = LlamaOptions(default_gguf, n_ctx_tokens=64, n_batch_tokens=64, n_threads=1)
    with LlamaModel(options) as model:
        context = model.new_context()
        # The context's own length check refuses such a request before llama.cpp sees it; lifted
        # here so that llama.cpp's KV cache (64 tokens, rounded up by llama.cpp) really runs full.
        context.n_ctx = 4096
        tokens = model.vocab.tokenize("Die Polizei sucht nach Zeugen des Unfalls. " * 80, add_bos=True)[:1024]
        with pytest.raises(ContextOverflow, match="no room in its KV cache"):
            context.logits_at(tokens, [len(tokens) - 1])
        short = tokens[:20]
        after = context.logits_at(short, [19])
        fresh = model.new_context().logits_at(short, [19])
    np.testing.assert_allclose(after, fresh, atol=1e-4)
