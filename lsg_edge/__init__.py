"""lsg-edge: on-device simultaneous translation and captioning, with the decision *when* to write
made by the language model itself (LSG, Guo et al., AAAI 2025).

Nothing is loaded or downloaded at import time; see `TranslationEngine.load`.
"""

from .errors import LsgEdgeError
from .policy.options import PolicyOptions
from .text.engine import TranslationEngine
from .events import Commit, Tentative
from .cascade import SpeechTranslationSession, SpeechTranslator
from .text.session import SessionOptions, TranslationSession

__all__ = [
    "TranslationEngine",
    "TranslationSession",
    "Commit",
    "Tentative",
    "SpeechTranslator",
    "SpeechTranslationSession",
    "PolicyOptions",
    "SessionOptions",
    "LsgEdgeError",
]
__version__ = "0.1.0"
