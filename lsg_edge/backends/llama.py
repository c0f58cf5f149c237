"""llama.cpp adapter: one loaded GGUF model, any number of scoring contexts over it.

This is the only module that imports `llama_cpp` (llama-cpp-python, pinned in pyproject.toml). It
uses the low-level API so that each forward pass asks for logits only at the positions a policy
reads — `Llama(logits_all=True)` would keep n_ctx × 262k floats for Gemma 3.

Cache discipline: each context remembers the token list its KV cache holds and the rows it
computed (`row_cache.RowCache`, shared with the Whisper decoder). With `reuse_cache=False` every
request starts from an empty cache — the straightforward path that the equivalence tests compare
against.

Embedding input (audio-LLMs): a sequence may hold `EmbeddingRow` items — one input
vector of an `EmbeddingBlock` (e.g. an audio encoder's output) in the place of a token. They are
evaluated through llama.cpp's embedding batches (`llama_batch_init(n, n_embd, 1)`) and take part
in prefix reuse like tokens: two rows are equal when their blocks hold the same values (a digest)
and their indices match.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import itertools
import os
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from ..device import DEVICES, LlamaBuild, LlamaDevice, LlamaPlacement, resolve_llama_device
from ..errors import ContextOverflow, ModelError, OptionsError
from .row_cache import RowCache
from .cpu_buffers import SETTINGS as EXTRA_BUFTS_SETTINGS
from .cpu_buffers import ExtraBuftsDecision, extra_bufts_decision
from .llama_log import silence_llama_log

__all__ = [
    "LlamaOptions",
    "LlamaModel",
    "LlamaContext",
    "EmbeddingBlock",
    "EmbeddingRow",
    "default_threads",
    "llama_build",
    "decode_error",
]

_GGUF_MAGIC = b"GGUF"
# Rows of logits a context keeps for reuse (1 MiB each with Gemma's 262k vocabulary).
_MAX_REMEMBERED_ROWS = 48


def default_threads() -> int:
    """Threads for llama.cpp: every core up to 4 — more rarely pays on small devices."""
    return max(1, min(4, os.cpu_count() or 1))


@dataclass(frozen=True)
class LlamaOptions:
    """How to load a GGUF model and size its contexts."""

    model_path: Path
    n_ctx_tokens: int = 2048  # KV-cache length of each context, tokens
    n_batch_tokens: int = 512  # tokens per llama_decode call when evaluating a long suffix
    n_threads: int = 0  # CPU threads; 0 = default_threads()
    device: str = "auto"  # "auto" | "cpu" | "cuda" | "metal", resolved by lsg_edge.device
    n_gpu_layers: int | None = None  # layers offloaded (-1 = all, 0 = none); None = the device's default
    use_mmap: bool = True  # map the weights instead of reading them into memory
    reuse_cache: bool = True  # keep the KV cache across requests (False: recompute everything)
    lora_path: Path | None = None  # llama.cpp LoRA adapter GGUF applied at run time
    lora_scale: float = 1.0  # scale of the runtime LoRA adapter
    # F32 KV cache and no flash attention: slower, but no F16 rounding in attention (parity checks)
    f32_attention: bool = False
    # llama.cpp's extra CPU buffer types (AMX, weight repacking): "auto" | "on" | "off";
    # None = $LSG_EDGE_EXTRA_BUFTS, else auto (decided per machine: backends/cpu_buffers.py)
    extra_bufts: str | None = None

    def __post_init__(self) -> None:
        if self.n_ctx_tokens < 64:
            raise OptionsError(f"n_ctx_tokens must be at least 64, got {self.n_ctx_tokens}")
        if self.n_batch_tokens < 1:
            raise OptionsError(f"n_batch_tokens must be positive, got {self.n_batch_tokens}")
        if self.n_threads < 0:
            raise OptionsError(f"--threads must be positive, got {self.n_threads}")
        if self.device not in DEVICES:
            raise OptionsError(f"--device must be one of {', '.join(DEVICES)}, got {self.device!r}")
        if self.extra_bufts not in (None, *EXTRA_BUFTS_SETTINGS):
            raise OptionsError(f"--extra-bufts must be one of {', '.join(EXTRA_BUFTS_SETTINGS)}, got {self.extra_bufts!r}")


@dataclass(frozen=True, eq=False)
class EmbeddingBlock:
    """Input vectors fed in the place of tokens, float32 [n, n_embd] (e.g. audio embeddings).

    `key` is a digest of shape and values: blocks with equal vectors are interchangeable in a
    context's KV cache, whichever object they come from (object ids can be reused after garbage
    collection; digests cannot mislead that way).
    """

    vectors: np.ndarray
    key: bytes = field(init=False)

    def __post_init__(self) -> None:
        vectors = np.ascontiguousarray(self.vectors, dtype=np.float32)
        if vectors.ndim != 2:
            raise ValueError(f"an embedding block is [n, n_embd], got shape {vectors.shape}")
        vectors.setflags(write=False)  # the digest must keep describing the values
        digest = hashlib.blake2b(repr(vectors.shape).encode() + vectors.tobytes(), digest_size=16).digest()
        object.__setattr__(self, "vectors", vectors)
        object.__setattr__(self, "key", digest)

    def __len__(self) -> int:
        return self.vectors.shape[0]

    @property
    def n_embd(self) -> int:
        return self.vectors.shape[1]

    def rows(self) -> list["EmbeddingRow"]:
        """One sequence item per vector, in order."""
        return [EmbeddingRow(self.key, i, self) for i in range(len(self))]


@dataclass(frozen=True)
class EmbeddingRow:
    """Vector `index` of `block`, as one item of a context's sequence (equal by digest and index)."""

    key: bytes
    index: int
    block: EmbeddingBlock = field(compare=False, repr=False)


def _llama_cpp():
    try:
        import llama_cpp
    except ImportError as e:  # pragma: no cover - a dependency of the package
        raise ModelError("llama-cpp-python is not installed: pip install llama-cpp-python") from e
    return llama_cpp


# ggml_backend_dev_type values (ggml-backend.h of the pinned llama.cpp), as LlamaDevice.kind.
_GGML_DEVICE_KINDS = ("cpu", "gpu", "igpu", "accel")


@functools.cache
def llama_build() -> LlamaBuild:
    """What the installed llama.cpp can run on: backends, devices, GPU offload (no model loaded)."""
    llama_cpp = _llama_cpp()
    silence_llama_log(llama_cpp)
    llama_cpp.llama_backend_init()
    backends, devices = _ggml_devices()
    return LlamaBuild(
        package_version=llama_cpp.__version__,
        gpu_offload=bool(llama_cpp.llama_supports_gpu_offload()),
        mmap=bool(llama_cpp.llama_supports_mmap()),
        backends=backends,
        devices=devices,
        system_info=llama_cpp.llama_print_system_info().decode("utf-8", "replace").strip(" |"),
    )


def _ggml_devices() -> tuple[tuple[str, ...], tuple[LlamaDevice, ...]]:
    """ggml's backend registry and device list. llama-cpp-python 0.3.36 does not bind these, so
    they are declared here over its private `_ggml.libggml` handle (signatures: ggml-backend.h)."""
    try:
        from llama_cpp._ggml import libggml as lib
    except (ImportError, OSError, AttributeError):  # pragma: no cover - another llama-cpp-python
        return (), ()
    p, text = ctypes.c_void_p, ctypes.c_char_p
    for name, argtypes, restype in (
        ("ggml_backend_reg_count", [], ctypes.c_size_t),
        ("ggml_backend_reg_get", [ctypes.c_size_t], p),
        ("ggml_backend_reg_name", [p], text),
        ("ggml_backend_dev_count", [], ctypes.c_size_t),
        ("ggml_backend_dev_get", [ctypes.c_size_t], p),
        ("ggml_backend_dev_name", [p], text),
        ("ggml_backend_dev_description", [p], text),
        ("ggml_backend_dev_type", [p], ctypes.c_int),
        ("ggml_backend_dev_backend_reg", [p], p),
    ):
        function = getattr(lib, name)
        function.argtypes, function.restype = argtypes, restype
    backends = tuple(lib.ggml_backend_reg_name(lib.ggml_backend_reg_get(i)).decode() for i in range(lib.ggml_backend_reg_count()))
    devices = []
    for i in range(lib.ggml_backend_dev_count()):
        dev = lib.ggml_backend_dev_get(i)
        kind = lib.ggml_backend_dev_type(dev)
        devices.append(LlamaDevice(
            name=lib.ggml_backend_dev_name(dev).decode(),
            description=(lib.ggml_backend_dev_description(dev) or b"").decode("utf-8", "replace"),
            kind=_GGML_DEVICE_KINDS[kind] if 0 <= kind < len(_GGML_DEVICE_KINDS) else "other",
            backend=lib.ggml_backend_reg_name(lib.ggml_backend_dev_backend_reg(dev)).decode(),
        ))
    return backends, tuple(devices)


def check_gguf_file(path: Path) -> None:
    """Raise ModelError with the path if `path` is not a readable GGUF file."""
    if not path.exists():
        raise ModelError(f"model file not found: {path}")
    if not path.is_file():
        raise ModelError(f"model path is not a file: {path}")
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic != _GGUF_MAGIC:
        raise ModelError(f"not a GGUF file (bad magic {magic!r}): {path}")


class LlamaModel:
    """A loaded GGUF model: weights, vocabulary, and the contexts created over it.

    Contexts are closed before the model (`close()` is idempotent; `with` works).
    """

    def __init__(self, options: LlamaOptions) -> None:
        self.options = options
        llama_cpp = _llama_cpp()
        from llama_cpp import _internals

        silence_llama_log(llama_cpp)
        # Resolved before the file is read: a missing GPU backend is the cheapest failure to report.
        self.placement: LlamaPlacement = resolve_llama_device(options.device, options.n_gpu_layers, llama_build())
        path = Path(options.model_path)
        check_gguf_file(path)
        build = llama_build()
        # Before any weight is placed: on some AMX machines the AMX kernels kill the process.
        self.extra_bufts: ExtraBuftsDecision = extra_bufts_decision(options.extra_bufts, build.package_version, build.system_info)
        params = llama_cpp.llama_model_default_params()
        params.n_gpu_layers = self.placement.n_gpu_layers
        params.use_mmap = options.use_mmap
        params.use_extra_bufts = self.extra_bufts.enabled
        try:
            self._model = _internals.LlamaModel(path_model=str(path), params=params, verbose=False)
        except ValueError as e:
            raise ModelError(f"llama.cpp could not load {path} (truncated or unsupported GGUF?)") from e
        self._lib = llama_cpp
        self._exit = ExitStack()
        self._exit.callback(self._model.close)
        self._lora = None
        if options.lora_path is not None:
            self._lora = self._load_lora(Path(options.lora_path))
        self.vocab = LlamaVocabulary(self._model, llama_cpp)
        self.path = path

    def _load_lora(self, path: Path):
        check_gguf_file(path)
        adapter = self._lib.llama_adapter_lora_init(self._model.model, str(path).encode())
        if not adapter:
            raise ModelError(f"llama.cpp could not load the LoRA adapter {path} (wrong base model?)")
        self._exit.callback(self._lib.llama_adapter_lora_free, adapter)
        return adapter

    @property
    def metadata(self) -> dict[str, str]:
        return self._model.metadata()

    @property
    def bos_text(self) -> str:
        """Text of the BOS token as chat templates write it (e.g. "<bos>"), or ""."""
        bos = self._lib.llama_vocab_bos(self._model.vocab)
        return self._model.token_get_text(bos) if bos >= 0 else ""

    @property
    def n_embd(self) -> int:
        return self._model.n_embd()

    def new_context(self) -> "LlamaContext":
        """A fresh scoring context (its own KV cache) over this model."""
        context = LlamaContext(self, self._lib)
        # Registered on the model's stack so that contexts close before the weights are freed.
        self._exit.callback(context.close)
        return context

    def close(self) -> None:
        self._exit.close()

    def __enter__(self) -> "LlamaModel":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class LlamaVocabulary:
    """Tokenizer of a loaded model (see `base.Vocabulary`)."""

    def __init__(self, model, llama_cpp) -> None:
        self._model = model
        self._lib = llama_cpp
        self.n_vocab = model.n_vocab()
        self._pieces: dict[int, bytes] = {}
        self.add_bos = bool(model.add_bos_token())

    def tokenize(self, text: str, *, add_bos: bool) -> list[int]:
        # llama-cpp-python's own tokenize allocates a buffer of the model's training context (32k
        # tokens for Gemma 3) per call; a session tokenizes ~40 prompts a sentence, so size it to
        # the text (a token holds at least one byte, plus BOS/EOS) and grow it if llama.cpp asks.
        data = text.encode("utf-8")
        size = len(data) + 4
        while True:
            buffer = (self._lib.llama_token * size)()
            n = self._lib.llama_tokenize(self._model.vocab, data, len(data), buffer, size, add_bos and self.add_bos, True)
            if n >= 0:
                return buffer[:n]
            if -n <= size:
                raise ModelError(f"llama.cpp could not tokenize a text of {len(data)} bytes")
            size = -n

    def piece(self, token: int) -> bytes:
        piece = self._pieces.get(token)
        if piece is None:
            buffer = ctypes.create_string_buffer(256)
            n = self._lib.llama_token_to_piece(self._model.vocab, token, buffer, 256, 0, False)
            piece = self._pieces[token] = buffer.raw[: max(n, 0)]
        return piece

    def is_end_of_generation(self, token: int) -> bool:
        return bool(self._lib.llama_vocab_is_eog(self._model.vocab, token))


class LlamaContext(RowCache):
    """One llama.cpp context (one KV cache, one sequence) over a `LlamaModel`, with the
    prefix-reusing row cache of `row_cache.RowCache`."""

    def __init__(self, model: LlamaModel, llama_cpp) -> None:
        from llama_cpp import _internals

        options = model.options
        super().__init__(reuse=options.reuse_cache, max_rows=_MAX_REMEMBERED_ROWS)
        self._lib = llama_cpp
        params = llama_cpp.llama_context_default_params()
        params.n_ctx = options.n_ctx_tokens
        params.n_batch = options.n_batch_tokens
        params.n_ubatch = options.n_batch_tokens
        params.n_seq_max = 1
        threads = options.n_threads or default_threads()
        params.n_threads = threads
        params.n_threads_batch = threads
        # Gemma 3 uses sliding-window attention; without a full-size SWA cache llama.cpp cannot
        # remove a suffix of the cache, and every prefix reuse would fall back to a full recompute.
        params.swa_full = True
        params.no_perf = True
        if options.f32_attention:
            params.type_k = llama_cpp.GGML_TYPE_F32
            params.type_v = llama_cpp.GGML_TYPE_F32
            params.flash_attn_type = llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED
        try:
            self._context = _internals.LlamaContext(model=model._model, params=params, verbose=False)
        except ValueError as e:
            raise ModelError(f"llama.cpp could not create a context of {options.n_ctx_tokens} tokens") from e
        if model._lora is not None:
            scales = (ctypes.c_float * 1)(model.options.lora_scale)
            # The array holds the adapter pointers as returned by llama_adapter_lora_init.
            adapters = (llama_cpp.llama_adapter_lora_p_ctypes * 1)(model._lora)
            if llama_cpp.llama_set_adapters_lora(self._context.ctx, adapters, 1, scales) != 0:
                raise ModelError(f"llama.cpp could not apply the LoRA adapter {model.options.lora_path}")
        self.n_ctx = options.n_ctx_tokens
        self.n_vocab = model.vocab.n_vocab
        self._n_batch = options.n_batch_tokens
        self._batch = llama_cpp.llama_batch_init(self._n_batch, 0, 1)
        self._n_embd = model.n_embd
        self._embd_batch = None  # llama_batch_init(n_batch, n_embd, 1), made on first embedding input
        self.n_decode_calls = 0
        self.n_tokens_evaluated = 0
        self.n_logits_rows = 0  # output rows computed (each costs a vocabulary-sized matmul)
        self.decode_seconds = 0.0  # wall time inside llama_decode (the rest of a request is host work)
        self._closed = False

    def reset(self) -> None:
        """Forget everything: the next request starts from an empty cache."""
        self._forget(0)

    def _check_length(self, n_tokens: int) -> None:
        if n_tokens > self.n_ctx:
            raise ContextOverflow(f"{n_tokens} tokens do not fit a context of {self.n_ctx}")

    def _cut(self, start: int) -> int:
        memory = self._lib.llama_get_memory(self._context.ctx)
        if start > 0 and self._lib.llama_memory_seq_rm(memory, 0, start, -1):
            return start
        # Partial removal refused (e.g. a sliding-window cache): start over.
        self._lib.llama_memory_clear(memory, True)
        return 0

    def _evaluate(self, tokens: list[int | EmbeddingRow], want: set[int]) -> None:
        for offset, chunk in _chunks(tokens, len(self._tokens), self._n_batch):
            self._decode(offset, chunk, want)

    def _decode(self, first: int, items: list, want: set[int]) -> None:
        """One llama_decode of `items` (all token ids or all embedding rows) at positions from `first`."""
        if isinstance(items[0], EmbeddingRow):
            batch = self._embedding_batch(items)
        else:
            batch = self._batch
            for i, token in enumerate(items):
                batch.token[i] = token
        batch.n_tokens = len(items)
        flagged = []
        for i in range(len(items)):
            position = first + i
            batch.pos[i] = position
            batch.n_seq_id[i] = 1
            batch.seq_id[i][0] = 0
            batch.logits[i] = position in want
            if position in want:
                flagged.append(position)
        started = time.perf_counter()
        code = self._lib.llama_decode(self._context.ctx, batch)
        self.decode_seconds += time.perf_counter() - started
        if code != 0:
            self._forget(0)
            raise decode_error(code, len(items), self.n_ctx)
        self.n_decode_calls += 1
        self.n_tokens_evaluated += len(items)
        self.n_logits_rows += len(flagged)
        self._tokens.extend(items)
        if flagged:
            # llama.cpp keeps the output rows of one call contiguous, in batch order, until the
            # next call: one copy of the block, then each remembered row is a view into it.
            pointer = self._lib.llama_get_logits(self._context.ctx)
            block = np.ctypeslib.as_array(pointer, shape=(len(flagged), self.n_vocab)).copy()
            block.setflags(write=False)
            for k, position in enumerate(flagged):
                self._rows[position] = block[k]

    def _embedding_batch(self, rows: list[EmbeddingRow]):
        """The embedding batch, filled with the vectors of `rows`."""
        vectors = np.stack([row.block.vectors[row.index] for row in rows])
        if vectors.shape[1] != self._n_embd:
            raise ModelError(f"embedding input of width {vectors.shape[1]} for a model of width {self._n_embd}")
        if self._embd_batch is None:
            self._embd_batch = self._lib.llama_batch_init(self._n_batch, self._n_embd, 1)
        ctypes.memmove(self._embd_batch.embd, vectors.ctypes.data, vectors.nbytes)
        return self._embd_batch

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._lib.llama_batch_free(self._batch)
        if self._embd_batch is not None:
            self._lib.llama_batch_free(self._embd_batch)
        self._context.close()


def decode_error(code: int, n_tokens: int, n_ctx: int) -> ModelError:
    """The typed error for a non-zero return code of `llama_decode` (codes: llama.h)."""
    if code == 1:
        return ContextOverflow(f"llama.cpp found no room in its KV cache for a batch of {n_tokens} tokens "
                               f"(context of {n_ctx}); use a larger --n-ctx")
    if code == 2:
        return ModelError(f"llama.cpp aborted the evaluation of a batch of {n_tokens} tokens")
    if code == -1:
        return ModelError(f"llama.cpp rejected a batch of {n_tokens} tokens as invalid (token ids outside the vocabulary?)")
    return ModelError(f"llama.cpp failed to evaluate a batch of {n_tokens} tokens (llama_decode returned {code})")


def _chunks(items: list, start: int, size: int):
    """(offset, run) pairs covering items[start:]: runs of at most `size` items, all token ids or all
    `EmbeddingRow`s."""
    offset = start
    for _, run in itertools.groupby(items[start:], key=lambda item: isinstance(item, EmbeddingRow)):
        run = list(run)
        for k in range(0, len(run), size):
            yield offset + k, run[k : k + size]
        offset += len(run)
