"""Audio-LLMs: an ONNX audio encoder whose embeddings are spliced into a GGUF LLM's
prompt, run by llama.cpp in the same two-context LSG loop as text and Whisper.

    manifest.py  the model manifest (TOML): encoder graph, LLM GGUF, prompt template with an audio slot
    prompt.py    the template as tokens around the audio slot, instructions per task, stop tokens
    encoder.py   log-mel → embeddings of the LLM's width (onnxruntime)
    engine.py    the engine: encoder + LLM + contexts whose sequences hold audio embedding rows
    cli.py       what `lsg-edge asr --manifest X.toml` needs from this package
"""

from .engine import AudioLlmEngine, AudioLlmOptions
from .manifest import AudioLlmManifest, load_audio_llm_manifest

__all__ = ["AudioLlmEngine", "AudioLlmOptions", "AudioLlmManifest", "load_audio_llm_manifest"]
