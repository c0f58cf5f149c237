"""What a converted Whisper directory holds: the contract between the converter
(`lsg_edge.convert.whisper_onnx`, which writes it) and the runtime (`onnx_runtime`, which reads it).

Encoder  `encoder.onnx`: `mel` float32 [batch, n_mels, n_frames] (n_frames even, ≤ 3000; shorter
         inputs use the first n_frames/2 positional embeddings) →
         `encoder_output` [batch, n_frames/2, d_model],
         `cross_k` [n_layers, batch, n_heads, head_dim, n_frames/2] (pre-transposed for Q·Kᵀ),
         `cross_v` [n_layers, batch, n_heads, n_frames/2, head_dim] — the decoder's cross-attention
         keys/values, computed once per encoder output.
Decoder  `decoder.onnx`: `tokens` int64 [batch, n_new], `self_k`/`self_v` [n_layers, batch, n_heads,
         n_past, head_dim] (the self-attention cache; n_past may be 0), `cross_k`, `cross_v` →
         `logits` [batch, n_new, n_vocab], `new_self_k`/`new_self_v` [.., n_past + n_new, ..],
         `alignment_attention` [batch, n_alignment_heads, n_new, n_audio]: the cross-attention
         weights (after softmax) of the model's alignment heads (`alignment_heads`), in
         (layer, head) order; the pairs are in the graph's metadata `whisper.alignment_heads`.
The decoder's positions are n_past … n_past+n_new-1, so a caller extends a cached prefix by
passing only the new tokens. Beside the graphs: the tokenizer files of the source model
(`vocabulary.txt` or `tokenizer.json`, `config.json`, `generation_config.json`).
"""

from __future__ import annotations

__all__ = ["ENCODER_FILE", "DECODER_FILE", "SIDE_FILES", "ALIGNMENT_OUTPUT"]

ENCODER_FILE = "encoder.onnx"
DECODER_FILE = "decoder.onnx"
ALIGNMENT_OUTPUT = "alignment_attention"
# Files copied beside the ONNX graphs so that the converted directory is self-contained.
SIDE_FILES = ("vocabulary.txt", "tokenizer.json", "config.json", "generation_config.json")
