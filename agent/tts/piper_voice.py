"""Piper text to speech (``piper-tts`` 1.8, ONNX Runtime) behind :class:`~agent.tts.base.SpeechSynthesizer`.

``piper`` (and with it onnxruntime) is imported inside :meth:`PiperVoice.load`, never at package import. Piper
phonemizes with its bundled espeak-ng (serialised by a process-wide lock inside piper) and runs one ONNX inference
per sentence; ONNX Runtime sessions are safe to run from several threads at once, so one loaded voice can serve
concurrent calls. Everything here blocks the calling thread: use a worker thread (``asyncio.to_thread``,
:func:`agent.tts.base.astream_sentences`) or process.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np

from agent.models import TTS_REMEDY, PiperVoiceFiles, bundled_voice_path, piper_voice_files
from agent.tts.base import split_sentences
from core.audio import AudioClip, PcmArray, resample
from core.errors import ModelMissingError

if TYPE_CHECKING:
    import piper

__all__ = ["PiperVoice"]


class PiperVoice:
    """A loaded Piper voice: text to mono int16 audio at the voice's own rate (22,050 Hz for en_US-joe-medium).

    >>> voice = PiperVoice.load()                                   # doctest: +SKIP
    >>> clip = voice.synthesize("Hello, I lost my credit card.")    # doctest: +SKIP
    >>> clip.sample_rate, clip.duration_ms                          # doctest: +SKIP
    """

    def __init__(self, voice: piper.PiperVoice, files: PiperVoiceFiles) -> None:
        """Wrap an already loaded ``piper.PiperVoice``; use :meth:`load` instead."""
        self._voice = voice
        self.files = files
        """The voice's model and config on disk."""

    @classmethod
    def load(cls, files: PiperVoiceFiles | None = None, *, use_cuda: bool = False) -> PiperVoice:
        """Load a Piper voice: ``files`` (see :func:`agent.models.piper_voice_files`), or the bundled
        en_US-joe-medium voice when ``None``. ``use_cuda`` asks ONNX Runtime for its CUDA provider (it falls back to
        the CPU, with a warning, when the installed onnxruntime has none).

        Takes about 1 s (reading a 63 MB model); blocking, on the calling thread. Raises
        :class:`ModelMissingError` when piper-tts is not installed or the voice files are missing or unusable.
        """
        if files is None:
            files = piper_voice_files(bundled_voice_path())
        for path in (files.model, files.config):
            if not path.is_file():
                raise ModelMissingError(
                    f"Piper voice file {path.name} does not exist", remedy=f"put the Piper voice at {path.parent}"
                )
        try:
            from onnxruntime.capi import onnxruntime_pybind11_state as ort_state
            from piper import PiperVoice as _PiperRuntime
        except ImportError as exc:
            raise ModelMissingError("piper-tts is not installed", remedy=TTS_REMEDY) from exc
        # ONNX Runtime's own errors (InvalidProtobuf, Fail, NoSuchFile, ...) derive from Exception directly.
        ort_errors = [e for e in vars(ort_state).values() if isinstance(e, type) and issubclass(e, Exception)]
        load_errors: tuple[type[Exception], ...] = (OSError, ValueError, KeyError, TypeError, RuntimeError, *ort_errors)
        try:
            voice = _PiperRuntime.load(files.model, files.config, use_cuda=use_cuda)
        except load_errors as exc:
            # A broken config gives ValueError/KeyError/TypeError; a broken model one of onnxruntime's errors.
            raise ModelMissingError(
                f"Piper voice {files.model.name} could not be loaded", remedy=f"reinstall the voice at {files.model}"
            ) from exc
        return cls(voice, files)

    @property
    def sample_rate_hz(self) -> int:
        """Rate of every clip returned (Hz): the voice config's ``audio.sample_rate``."""
        return int(self._voice.config.sample_rate)

    def synthesize(self, text: str) -> AudioClip:
        """All of ``text`` as one mono int16 clip at :attr:`sample_rate_hz` (sentences back to back, each with
        Piper's own short trailing pause); an empty clip when ``text`` has nothing to say. Blocking, CPU-bound."""
        parts = [clip.samples for clip in self.synthesize_sentences(text)]
        samples = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int16)
        return AudioClip(samples, self.sample_rate_hz, 1)

    def synthesize_sentences(self, text: str) -> Iterator[AudioClip]:
        """One mono int16 clip at :attr:`sample_rate_hz` per sentence of :func:`~agent.tts.base.split_sentences`,
        in order; each sentence is synthesized when the iterator is advanced (blocking, CPU-bound). A sentence that
        Piper turns into no audio gives an empty clip, so clips and sentences stay one to one."""
        for sentence in split_sentences(text):
            yield AudioClip(self._sentence_pcm(sentence), self.sample_rate_hz, 1)

    def _sentence_pcm(self, sentence: str) -> PcmArray:
        rate = self.sample_rate_hz
        parts: list[PcmArray] = []
        for chunk in self._voice.synthesize(sentence):
            pcm = np.asarray(chunk.audio_int16_array, dtype=np.int16)
            if chunk.sample_channels > 1:
                pcm = pcm.reshape(-1, chunk.sample_channels)[:, 0].copy()
            if chunk.sample_rate != rate:
                pcm = resample(pcm, chunk.sample_rate, rate)
            parts.append(pcm)
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int16)
