"""Metadata keys under which a converted GGUF records where its weights came from.

The merged model and the runtime adapter each carry their own set (base file, adapter folder and
digest, LoRA alpha, rank, scale), so a file can be told apart from its twin made the other way.
"""

from __future__ import annotations

__all__ = ["MERGE_LORA_PREFIX", "LORA_TO_GGUF_PREFIX"]

MERGE_LORA_PREFIX = "lsg_edge.merge_lora."
LORA_TO_GGUF_PREFIX = "lsg_edge.lora_to_gguf."
