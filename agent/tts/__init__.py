"""Text to speech: the :class:`SpeechSynthesizer` interface and the Piper backend (:class:`PiperVoice`).

``piper`` itself (and onnxruntime) is imported only inside :meth:`PiperVoice.load`, so importing this package
stays cheap.
"""

from __future__ import annotations

from agent.tts.base import SpeechSynthesizer, astream_sentences, split_sentences
from agent.tts.piper_voice import PiperVoice

__all__ = ["PiperVoice", "SpeechSynthesizer", "astream_sentences", "split_sentences"]
