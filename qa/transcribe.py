"""Batch transcription of whole recorded calls for quality inspection: :class:`CallTranscriber`.

Method (measured on 2 cores, see docs/qa.md): Whisper **base** (int8) with beam search and word timestamps, on
speech only. Each party's audio goes through faster-whisper's Silero VAD; the speech regions are packed, silence
removed, into chunks of at most ~15 s (:func:`qa.transcribe_parts.pack_regions`), and each chunk is decoded by
faster-whisper's ``BatchedInferencePipeline`` on an encoder window fitted to it (at least 10 s instead of
Whisper's fixed 30 s: the encoder and the decoder's cross-attention both get cheaper). Chunks of both parties are
decoded by ``passes`` threads at once, each pass on ``threads / passes`` CPU threads of one shared model
(CTranslate2 keeps one replica per pass). The language is detected once per call, on up to 20 s of speech of
both parties, unless given; Chinese is decoded with a Simplified-Chinese initial prompt. Every recogniser segment
becomes turns split at pauses over 0.8 s, with words and times in milliseconds from the start of the recording.

Blocking and CPU-bound (about a tenth of the call's duration on 2 cores): call it from a QA worker process,
never on an event loop. One object may be used from several threads; the model loads on first use.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Final, Literal

import numpy as np
import numpy.typing as npt

from asr.backends.faster_whisper import DEFAULT_ZH_PROMPT, FasterWhisperRecognizer, Normalizer
from asr.base import SAMPLE_RATE_HZ, LangChoice
from asr.normalize import normalize_for_display
from core.errors import AudioFormatError, InvalidInputError, VoxdeskError
from core.logging import get_logger
from qa.models import CallTranscript, Channel, SpeakerTurn
from qa.transcribe_decode import ChunkDecoder, DecodeSettings
from qa.transcribe_parts import Chunk, Region, drop_echoes, intersect_regions, pack_regions

__all__ = ["CallTranscriber"]

log = get_logger(__name__)

_MIN_SAMPLES: Final = SAMPLE_RATE_HZ // 100


class CallTranscriber:
    """Turns a recorded call into a :class:`qa.models.CallTranscript` (see the module docstring for the method).

    ``model_dir``: the Whisper base folder (:func:`asr.models.whisper_model_path`), or a function returning it
    (called once, on first use, so that building a pipeline assembles nothing). ``threads``: CPU threads in all;
    ``passes``: chunks decoded at once (each on ``threads // passes`` threads; 2 × 1 measured fastest on 2 cores).
    ``beam_size``: beam search width (5 for QA quality). ``batch_size``: most chunks decoded together in one pass
    (batched beam search), used up to half the pass's threads: batching only pays where a pass has threads to
    spread it over (2 cores, 2 passes × 1 thread: batch 1 ×16.9 real time, 4 ×15.9, 8 ×12.6).
    ``max_chunk_s``: most speech per chunk (s); ``min_window_s``: shortest encoder window (s; ``None`` = Whisper's
    full 30 s). ``vad_threshold``: Silero speech probability (0.4 suits 8 kHz telephone audio). ``max_gap_ms``: a
    pause longer than this inside a segment starts a new turn. ``zh_prompt``: initial prompt for Chinese;
    ``hotwords``: bank vocabulary for the decoder.
    """

    def __init__(
        self,
        model_dir: Path | Callable[[], Path],
        *,
        compute_type: str = "int8",
        threads: int = 2,
        passes: int = 2,
        beam_size: int = 5,
        batch_size: int = 1,
        max_chunk_s: float = 15.0,
        min_window_s: float | None = 10.0,
        vad_threshold: float = 0.4,
        min_silence_ms: int = 500,
        speech_pad_ms: int = 300,
        max_gap_ms: int = 800,
        join_gap_ms: int = 300,
        timestamps: bool = True,
        zh_prompt: str = DEFAULT_ZH_PROMPT,
        hotwords: Sequence[str] = (),
        normalizer: Normalizer = normalize_for_display,
    ) -> None:
        if threads < 1 or passes < 1 or beam_size < 1 or batch_size < 1 or not 1.0 <= max_chunk_s <= 29.0:
            raise InvalidInputError("bad CallTranscriber settings")
        self._model_dir = model_dir
        self.compute_type = compute_type
        self.passes = min(passes, threads)
        self.threads_per_pass = max(1, threads // self.passes)
        self.batch_size = min(batch_size, max(1, self.threads_per_pass // 2))
        self.max_chunk_s = max_chunk_s
        self.vad_threshold = vad_threshold
        self.min_silence_ms = min_silence_ms
        self.speech_pad_ms = speech_pad_ms
        self.join_gap_ms = join_gap_ms
        self.zh_prompt = zh_prompt
        self.normalizer = normalizer
        self.decode_settings = DecodeSettings(
            beam_size=beam_size,
            min_window_s=min_window_s,
            timestamps=timestamps,
            zh_prompt=zh_prompt,
            hotwords=" ".join(w for w in hotwords if w.strip()) or None,
            max_gap_ms=max_gap_ms,
        )
        self._chunk_decoder: ChunkDecoder | None = None
        self._lock = threading.Lock()

    # ------------------------------------------------------------------------------------------ public

    def transcribe_channels(
        self, channels: Mapping[Channel, npt.NDArray[np.int16]], *, lang: LangChoice = "auto"
    ) -> CallTranscript:
        """Transcribe each party's own audio (16 kHz mono int16; a stereo recording gives both parties, customer
        left and agent right). ``lang``: ``zh``, ``en`` or ``auto`` (detected once for the call). The transcript
        is ``stereo`` with two parties, ``mono`` with one. Raises :class:`AudioFormatError` for unusable audio."""
        if not channels:
            raise AudioFormatError("No audio channels to transcribe.")
        for pcm in channels.values():
            _check_pcm(pcm)
        started = time.perf_counter()
        with ThreadPoolExecutor(self.passes, thread_name_prefix="qa-asr") as pool:
            found = dict(zip(channels, pool.map(self._speech_regions, channels.values()), strict=True))
            chunks = [c for ch, regions in found.items() for c in self._pack(regions, ch)]
            transcript = self._transcribe(pool, chunks, dict(channels), lang, "stereo" if len(channels) > 1 else "mono")
        self._log(transcript, chunks, started)
        return transcript

    def transcribe_diarized(
        self,
        pcm16k: npt.NDArray[np.int16],
        speaker_turns: Sequence[SpeakerTurn],
        roles: Mapping[str, Channel],
        *,
        lang: LangChoice = "auto",
    ) -> CallTranscript:
        """Transcribe a mono recording (16 kHz int16) within its diarized turns: the speech of each speaker's
        turns is decoded and its turns labelled with that speaker's party (``roles``: speaker label → party).
        Speech where turns of several speakers overlap is given to each of them (so talk-over keeps both sides).
        Raises :class:`InvalidInputError` when a speaker of ``speaker_turns`` has no role."""
        _check_pcm(pcm16k)
        missing = sorted({t.speaker for t in speaker_turns} - set(roles))
        if missing:
            raise InvalidInputError("a diarized speaker has no role", speakers=len(missing))
        started = time.perf_counter()
        per_party: dict[Channel, list[Region]] = {}
        for t in speaker_turns:
            region = (t.start_ms * SAMPLE_RATE_HZ // 1000, min(len(pcm16k), t.end_ms * SAMPLE_RATE_HZ // 1000))
            per_party.setdefault(roles[t.speaker], []).append(region)
        with ThreadPoolExecutor(self.passes, thread_name_prefix="qa-asr") as pool:
            speech = self._speech_regions(pcm16k) if per_party else []
            chunks = [c for ch, turns in per_party.items() for c in self._pack(intersect_regions(speech, turns), ch)]
            audio = dict.fromkeys(per_party, pcm16k)
            transcript = self._transcribe(pool, chunks, audio, lang, "diarized")
        self._log(transcript, chunks, started)
        return transcript

    # ------------------------------------------------------------------------------------------ stages

    def _decoder(self) -> ChunkDecoder:
        """The decoder on the shared model, loaded on first use (~0.5 s; any thread)."""
        with self._lock:
            if self._chunk_decoder is None:
                folder = self._model_dir() if callable(self._model_dir) else self._model_dir
                recognizer = FasterWhisperRecognizer(
                    folder,
                    compute_type=self.compute_type,
                    cpu_threads=self.threads_per_pass,
                    num_workers=self.passes,
                    normalizer=self.normalizer,
                    zh_prompt=self.zh_prompt,
                )
                self._chunk_decoder = ChunkDecoder(recognizer, self.decode_settings, self.normalizer)
            return self._chunk_decoder

    def _speech_regions(self, pcm: npt.NDArray[np.int16]) -> list[Region]:
        """Silero VAD (faster-whisper's batched pass, one thread) over one party's audio."""
        from faster_whisper.vad import VadOptions, get_speech_timestamps

        if len(pcm) < _MIN_SAMPLES:
            return []
        options = VadOptions(
            threshold=self.vad_threshold,
            min_speech_duration_ms=100,
            max_speech_duration_s=self.max_chunk_s,
            min_silence_duration_ms=self.min_silence_ms,
            speech_pad_ms=self.speech_pad_ms,
        )
        try:
            stamps = get_speech_timestamps(_float(pcm), options)
        except (RuntimeError, ValueError) as exc:
            raise VoxdeskError("Voice activity detection failed.") from exc
        return [(int(s["start"]), int(s["end"])) for s in stamps]

    def _pack(self, regions: Sequence[Region], channel: Channel) -> list[Chunk]:
        gap = self.join_gap_ms * SAMPLE_RATE_HZ // 1000
        return pack_regions(regions, channel, max_samples=int(self.max_chunk_s * SAMPLE_RATE_HZ), gap_samples=gap)

    def _transcribe(
        self,
        pool: ThreadPoolExecutor,
        chunks: list[Chunk],
        audio: dict[Channel, npt.NDArray[np.int16]],
        lang: LangChoice,
        source: Literal["stereo", "diarized", "mono"],
    ) -> CallTranscript:
        duration_ms = max(len(a) for a in audio.values()) * 1000 // SAMPLE_RATE_HZ if audio else 0
        if not chunks:
            return CallTranscript((), duration_ms, "zh" if lang == "zh" else "en", source)
        decoder = self._decoder()
        if lang == "zh" and not decoder.recognizer.multilingual:
            raise AudioFormatError("This Whisper model is English-only; it cannot recognise zh.")
        pcm = {ch: _float(a) for ch, a in audio.items()}
        call_lang = decoder.detect_language(chunks, pcm) if lang == "auto" else lang
        ordered = sorted(chunks, key=lambda c: c.samples, reverse=True)  # longest first: the passes end together
        batches = [ordered[i : i + self.batch_size] for i in range(0, len(ordered), self.batch_size)]
        turns = [t for part in pool.map(lambda b: decoder.decode(b, pcm, call_lang), batches) for t in part]
        turns.sort(key=lambda t: (t.start_ms, t.end_ms, t.channel))
        return CallTranscript(tuple(drop_echoes(turns)), duration_ms, call_lang, source)

    def _log(self, transcript: CallTranscript, chunks: Sequence[Chunk], started: float) -> None:
        log.info(
            "call transcribed",
            audio_ms=transcript.duration_ms,
            speech_ms=sum(c.samples for c in chunks) * 1000 // SAMPLE_RATE_HZ,
            chunks=len(chunks),
            turns=len(transcript.turns),
            lang=transcript.lang,
            wall_ms=round((time.perf_counter() - started) * 1000),
        )


def _check_pcm(pcm: Any) -> None:
    if not isinstance(pcm, np.ndarray) or pcm.dtype != np.int16 or pcm.ndim != 1:
        raise AudioFormatError("Call audio must be mono int16 PCM at 16 kHz per party.")


def _float(pcm: npt.NDArray[np.int16]) -> npt.NDArray[np.float32]:
    return pcm.astype(np.float32) / np.float32(32768.0)
