"""Text to speech: the :class:`SpeechSynthesizer` interface and the Piper backend (:class:`PiperVoice`), call
framing (:class:`CallAudioStream`, :func:`to_call_frames`), the rendered-prompt cache (:class:`PromptCache`) and
the per-language voices with their pre-recorded fallback (:class:`VoiceSet`, :class:`PrerecordedPrompts`).

``piper`` itself (and onnxruntime) is imported only inside :meth:`PiperVoice.load`, so importing this package
stays cheap.
"""

from __future__ import annotations

from agent.tts.base import SpeechSynthesizer, astream_sentences, split_sentences
from agent.tts.cache import PromptCache, voice_identity
from agent.tts.frames import CallAudioStream, astream_call_frames, iter_call_frames, to_call_frames
from agent.tts.piper_voice import PiperVoice
from agent.tts.voices import LanguageVoice, PrerecordedPrompts, PromptMissingError, VoiceSet

__all__ = [
    "CallAudioStream",
    "LanguageVoice",
    "PiperVoice",
    "PrerecordedPrompts",
    "PromptCache",
    "PromptMissingError",
    "SpeechSynthesizer",
    "VoiceSet",
    "astream_call_frames",
    "astream_sentences",
    "iter_call_frames",
    "split_sentences",
    "to_call_frames",
    "voice_identity",
]
