"""Whisper speech recognition with faster-whisper (CTranslate2, int8 on CPU).

``FasterWhisperRecognizer(model_dir)`` loads the model once per process (a process-wide cache keyed by folder,
compute type and thread count, so several recognisers share one copy of the ~140 MB weights) and implements
:class:`asr.base.Recognizer`. :meth:`FasterWhisperRecognizer.transcribe` is blocking and CPU-bound: run it in a
speech worker process or via ``asyncio.to_thread``. It may be called from several threads at once: CTranslate2
runs up to ``num_workers`` passes in parallel (each on ``cpu_threads`` threads, one model replica each) and queues
the rest; a live speech worker on two cores runs two passes of one thread each, which keeps both cores busier than
one pass on two threads.

The model folder comes from :func:`asr.models.whisper_model_path`; nothing here downloads.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal

import numpy as np
import numpy.typing as npt

from asr.base import SAMPLE_RATE_HZ, DecodeOptions, Segment, Transcription
from asr.normalize import cjk_chars, normalize_for_display
from core.errors import AudioFormatError, ModelMissingError, VoxdeskError

if TYPE_CHECKING:
    from faster_whisper import WhisperModel

__all__ = ["DEFAULT_ZH_PROMPT", "FasterWhisperRecognizer", "Normalizer", "mean_token_probability"]

Normalizer = Callable[[str, Literal["zh", "en"]], str]
"""``normalizer(text, lang)`` turns raw Whisper text into display text (see :func:`normalize_for_display`)."""

DEFAULT_ZH_PROMPT: Final = "以下是普通话的句子。"
"""Simplified-Chinese initial prompt used for ``zh`` when :class:`DecodeOptions` gives none: without one, Whisper
base often answers in Traditional characters."""

_MIN_SAMPLES: Final = SAMPLE_RATE_HZ // 100  # 10 ms: anything shorter has no speech to recognise
_FRAMES_PER_S: Final = 100  # Whisper's log-mel hop: 10 ms
_WINDOW_STEP: Final = 100  # fitted windows are rounded up to whole seconds (fewer distinct shapes)
_WINDOW_MARGIN: Final = 100  # 1 s of padding after the audio in a fitted window
_MODELS: dict[tuple[str, str, int, int], Any] = {}
_MODELS_LOCK = threading.Lock()


def fitted_frames(content_frames: int, total_frames: int, min_window_s: float) -> int:
    """Encoder frames for a fitted window: the content plus a 1 s margin, at least ``min_window_s``, rounded up to
    whole seconds, never more than ``total_frames`` (the model's full window)."""
    wanted = max(int(min_window_s * _FRAMES_PER_S), content_frames + _WINDOW_MARGIN)
    return min(total_frames, -(-wanted // _WINDOW_STEP) * _WINDOW_STEP)


def _windowed_model_class() -> type[Any]:
    """A ``WhisperModel`` whose encoder can run on a window fitted to the audio (per thread, see
    :meth:`FasterWhisperRecognizer.transcribe`): faster-whisper always pads the log-mel features to 30 s, and
    CTranslate2's Whisper encoder accepts shorter inputs, so the padding beyond the fitted window is cut off here."""
    from faster_whisper import WhisperModel
    from faster_whisper.transcribe import get_ctranslate2_storage

    class WindowedWhisperModel(WhisperModel):  # type: ignore[misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.window = threading.local()

        def encode(self, features: npt.NDArray[np.float32]) -> Any:
            min_window_s = getattr(self.window, "min_s", None)
            if min_window_s is None:
                return super().encode(features)
            batch = features if features.ndim == 3 else np.expand_dims(features, 0)
            voiced = np.flatnonzero(np.any(batch != 0, axis=(0, 1)))  # padding is exact zeros
            content = int(voiced[-1]) + 1 if len(voiced) else 0
            frames = fitted_frames(content, batch.shape[-1], min_window_s)
            window = np.ascontiguousarray(batch[..., :frames])
            return self.model.encode(get_ctranslate2_storage(window), to_cpu=False)

    return WindowedWhisperModel


def _load_model(model_dir: Path, compute_type: str, cpu_threads: int, num_workers: int = 1) -> Any:
    """Load (or reuse) the CTranslate2 Whisper model in ``model_dir``; raises :class:`ModelMissingError`."""
    key = (str(model_dir.resolve()), compute_type, cpu_threads, num_workers)
    with _MODELS_LOCK:
        model = _MODELS.get(key)
        if model is not None:
            return model
        if not (model_dir / "model.bin").is_file():
            raise ModelMissingError("Whisper model folder has no model.bin", remedy="voxdesk models provision")
        try:
            windowed = _windowed_model_class()
        except ImportError as exc:
            raise ModelMissingError("faster-whisper is not installed", remedy="pip install 'voxdesk[asr]'") from exc
        try:
            model = windowed(
                str(model_dir),
                device="cpu",
                compute_type=compute_type,
                cpu_threads=cpu_threads,
                num_workers=num_workers,
            )
        except (RuntimeError, ValueError, OSError) as exc:
            raise ModelMissingError(
                "Whisper model could not be loaded", remedy="voxdesk models provision (rebuilds it)"
            ) from exc
        _MODELS[key] = model
        return model


def mean_token_probability(segments: Sequence[Any]) -> float | None:
    """Geometric-mean token probability in [0, 1] over faster-whisper segments.

    Each segment's ``avg_logprob`` is weighted by its token count: ``exp(Σ avg_logprob_i·n_i / Σ n_i)``, i.e.
    the exponential of the mean log-probability of every token decoded. ``None`` when nothing was decoded.
    """
    total = weighted = 0.0
    for seg in segments:
        n = len(seg.tokens)
        if n and seg.avg_logprob is not None and math.isfinite(seg.avg_logprob):
            total += n
            weighted += seg.avg_logprob * n
    if total == 0:
        return None
    return min(1.0, max(0.0, math.exp(weighted / total)))


class FasterWhisperRecognizer:
    """:class:`asr.base.Recognizer` on a local faster-whisper model (multilingual base or English-only tiny.en).

    ``model_dir``: a folder that ``WhisperModel`` loads (from :func:`asr.models.whisper_model_path`).
    ``compute_type``: CTranslate2 type (``int8`` on CPU). ``cpu_threads``: intra-op threads per pass (2 on the
    reference machine). ``num_workers``: passes that may run at once from different threads. ``normalizer``: maps
    raw output to display text (Simplified Chinese etc.).
    ``temperatures``: decoding temperatures; more than one enables Whisper's fallback when a decode looks like a
    loop or has a low log-probability (slower on bad audio). ``vad_filter``: drop non-speech with the bundled
    Silero VAD first (useful for long recordings with pauses; utterances from an endpointer need none).
    ``zh_prompt``: the initial prompt for ``zh`` when the options give none.

    Loading happens in the constructor (~0.5 s the first time in a process, then shared). The object is safe to
    use from several threads.
    """

    def __init__(
        self,
        model_dir: Path,
        *,
        compute_type: str = "int8",
        cpu_threads: int = 2,
        num_workers: int = 1,
        normalizer: Normalizer = normalize_for_display,
        temperatures: Sequence[float] = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0),
        vad_filter: bool = False,
        zh_prompt: str = DEFAULT_ZH_PROMPT,
    ) -> None:
        self.model_dir = model_dir
        self.normalizer = normalizer
        self.temperatures = tuple(temperatures) or (0.0,)
        self.vad_filter = vad_filter
        self.zh_prompt = zh_prompt
        self._model = _load_model(model_dir, compute_type, cpu_threads, num_workers)
        self._prompt_token_counts: dict[str, int] = {}

    @property
    def model(self) -> WhisperModel:
        """The shared ``faster_whisper.WhisperModel`` (for baselines and diagnostics; do not reconfigure it)."""
        return self._model

    @property
    def multilingual(self) -> bool:
        """False for English-only models (``tiny.en``), which can only decode ``en``."""
        return bool(self._model.model.is_multilingual)

    def detect_language(self, audio: npt.NDArray[np.float32]) -> Literal["zh", "en"]:
        """Choose ``zh`` or ``en`` for float32 16 kHz audio from Whisper's language probabilities (first 30 s);
        other languages are ignored (Cantonese ``yue`` counts as Chinese)."""
        if not self.multilingual:
            return "en"
        try:
            _, _, probs = self._model.detect_language(audio)
        except (RuntimeError, ValueError) as exc:
            raise VoxdeskError("Speech recognition failed.") from exc
        p = dict(probs)
        return "zh" if p.get("zh", 0.0) + p.get("yue", 0.0) >= p.get("en", 0.0) else "en"

    def transcribe(self, pcm16k: npt.NDArray[np.int16], options: DecodeOptions) -> Transcription:
        """Recognise mono 16 kHz PCM16 (shape ``(n,)``); returns display-normalised text and segments (ms).

        Runs on the calling thread and blocks for the whole decode (RTF ~0.1–0.4 with 2 threads). Raises
        :class:`AudioFormatError` for non-int16, non-mono or empty audio, and :class:`VoxdeskError` when the
        engine fails.
        """
        if not isinstance(pcm16k, np.ndarray) or pcm16k.dtype != np.int16 or pcm16k.ndim != 1:
            raise AudioFormatError("Recogniser input must be mono int16 PCM at 16 kHz.")
        if len(pcm16k) < _MIN_SAMPLES:
            raise AudioFormatError("Audio is too short to recognise.", samples=len(pcm16k))
        started = time.perf_counter()
        audio = pcm16k.astype(np.float32) / np.float32(32768.0)
        lang: Literal["zh", "en"]
        if options.lang == "auto":
            lang = self.detect_language(audio)
        elif options.lang == "zh" and not self.multilingual:
            raise AudioFormatError("This Whisper model is English-only; it cannot recognise zh.")
        else:
            lang = options.lang
        segments = self._decode(audio, lang, options)
        raw = "".join(seg.text for seg in segments)
        out = tuple(
            Segment(
                text=self.normalizer(seg.text, lang),
                start_ms=round(seg.start * 1000),
                end_ms=round(seg.end * 1000),
                avg_logprob=seg.avg_logprob,
                no_speech_prob=seg.no_speech_prob,
            )
            for seg in segments
        )
        return Transcription(
            text=self.normalizer(raw, lang),
            lang=lang,
            confidence=mean_token_probability(segments),
            segments=out,
            audio_ms=len(pcm16k) * 1000 // SAMPLE_RATE_HZ,
            compute_ms=(time.perf_counter() - started) * 1000.0,
        )

    def _prompt(self, lang: Literal["zh", "en"], options: DecodeOptions) -> str | None:
        prompt = options.prompt
        if lang == "zh":
            return prompt or self.zh_prompt
        if prompt and cjk_chars(prompt):  # a Chinese prompt would pull English speech towards Chinese
            return None
        return prompt

    def _token_cap(self, samples: int, per_s: float | None, hotwords: str, prompt: str | None) -> int | None:
        """``max_new_tokens`` for a pass: the per-second cap, within what Whisper's 448-token context leaves after
        the prompt (hot words and initial prompt, each at most 223 tokens); ``None`` when uncapped."""
        cap = _token_cap(samples, per_s)
        if cap is None:
            return None
        room = 448 - self._prompt_tokens(hotwords) - self._prompt_tokens(prompt or "") - 8  # + SOT, language, task
        return min(cap, room) if room > 16 else None

    def _prompt_tokens(self, text: str) -> int:
        """Tokens of a prompt part, at most 223 (as faster-whisper truncates it); counted once per text (any
        thread: a racing first count only repeats the same work)."""
        count = self._prompt_token_counts.get(text)
        if count is None:
            count = min(len(self._model.hf_tokenizer.encode(text).ids), 223) if text else 0
            self._prompt_token_counts[text] = count
        return count

    def _decode(self, audio: npt.NDArray[np.float32], lang: Literal["zh", "en"], options: DecodeOptions) -> list[Any]:
        hotwords = [w for w in options.hotwords if w.strip()]
        if lang == "en":
            hotwords = [w for w in hotwords if not cjk_chars(w)]
        joined_hotwords = " ".join(hotwords)
        prompt = self._prompt(lang, options)
        temperature: float | tuple[float, ...] = (
            self.temperatures[0] if len(self.temperatures) == 1 else self.temperatures
        )
        self._model.window.min_s = options.window_s
        try:
            segments, _info = self._model.transcribe(
                audio,
                language=lang if self.multilingual else None,
                beam_size=max(1, options.beam_size),
                best_of=max(1, options.beam_size),
                temperature=temperature,
                initial_prompt=prompt,
                hotwords=joined_hotwords or None,
                vad_filter=self.vad_filter,
                condition_on_previous_text=True,
                without_timestamps=not options.timestamps,
                max_new_tokens=self._token_cap(len(audio), options.max_tokens_per_s, joined_hotwords, prompt),
            )
            return list(segments)  # materialise the lazy generator here, on the worker
        except (RuntimeError, ValueError) as exc:
            raise VoxdeskError("Speech recognition failed.") from exc
        finally:
            self._model.window.min_s = None


def _token_cap(samples: int, per_s: float | None) -> int | None:
    """Most tokens to decode for ``samples`` of 16 kHz audio at ``per_s`` tokens per second (``None``: no cap)."""
    if per_s is None:
        return None
    return min(220, 16 + int(per_s * samples / 16_000))
