"""Evaluation of simultaneous generation the way the field measures it.

Latency metrics reproduce SimulEval 1.1.4 (`latency`), over modality-independent instance records
(`instance`: delays in source words for text, ms of audio for speech); quality is sacrebleu BLEU and
chrF, or jiwer WER (`scoring`). `text_run` and `runner` drive the text engine over a corpus and a
sweep of settings (`sweep`); a speech runner produces the same `Instance`s and reuses the rest.

Nothing heavy is imported here: the model, sacrebleu and matplotlib load when used.
"""

from .instance import Instance, read_instances, write_instances
from .scoring import LatencyOptions, latency_scores, quality_scores

__all__ = ["Instance", "read_instances", "write_instances", "LatencyOptions", "latency_scores", "quality_scores"]
