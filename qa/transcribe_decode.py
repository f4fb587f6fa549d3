"""Decoding packed speech chunks with faster-whisper for :class:`qa.transcribe.CallTranscriber`.

:class:`ChunkDecoder` runs ``BatchedInferencePipeline`` (beam search, word timestamps) on one or more
:class:`~qa.transcribe_parts.Chunk` s on an encoder window fitted to them, and turns the segments into
:class:`~qa.models.Turn` s in recording time. Two guards keep speed from costing words: a chunk whose output is a
decoding loop is decoded once more with repeated 4-grams forbidden, and a piece of a chunk that got no word
(Whisper sometimes skips a quiet utterance that follows a loud one) is decoded again on its own. The language is
detected once per call (:meth:`ChunkDecoder.detect_language`).

Runs on the calling thread (a pass of the transcriber's pool); the fitted-window setting is thread-local, so
several threads may decode at once on one shared model.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Literal

import numpy as np
import numpy.typing as npt

from asr.backends.faster_whisper import FasterWhisperRecognizer, Normalizer
from asr.base import SAMPLE_RATE_HZ
from core.errors import VoxdeskError
from qa.models import Channel, Turn
from qa.transcribe_parts import Chunk, RawWord, choose_language, compression_ratio, repeat_key, segment_turns

if TYPE_CHECKING:
    from faster_whisper.transcribe import Segment as WhisperSegment

__all__ = ["ChunkDecoder", "DecodeSettings", "chunk_audio"]

_LOOP_RATIO: Final = 2.4
"""gzip compression ratio above which a decode is taken as a loop (Whisper's own threshold)."""
_NO_SPEECH_PROB: Final = 0.6
_NO_SPEECH_LOGPROB: Final = -1.0
_MIN_REPEAT_S: Final = 0.2
"""A segment that repeats an earlier one of its chunk in less than this (s) is a decoding artefact."""
_LANG_SAMPLE_S: Final = 20


@dataclass(frozen=True)
class DecodeSettings:
    """How chunks are decoded (see :class:`qa.transcribe.CallTranscriber` for each choice)."""

    beam_size: int = 5
    min_window_s: float | None = 10.0
    timestamps: bool = True
    """Predict segment timestamps: Whisper then splits its output into segments and skips less speech."""
    zh_prompt: str = ""
    hotwords: str | None = None
    max_gap_ms: int = 800
    retry_min_ms: int = 500
    """A skipped piece shorter than this (ms) is not decoded again."""
    max_tokens_per_s: float = 10.0
    """Cap on the tokens decoded per second of chunk audio (plus 16): speech needs at most ~8 (Mandarin), so a
    decoding loop stops early instead of running to Whisper's 448-token limit."""


def chunk_audio(chunk: Chunk, audio: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """The chunk's float32 audio: its pieces of ``audio`` (the party's whole recording) with silence between."""
    out = np.zeros(chunk.samples, dtype=np.float32)
    for p in chunk.pieces:
        out[p.chunk_start : p.chunk_end] = audio[p.source_start : p.source_start + p.length]
    return out


class ChunkDecoder:
    """Decodes chunks on a loaded recogniser's model; stateless apart from its settings (thread-safe)."""

    def __init__(self, recognizer: FasterWhisperRecognizer, settings: DecodeSettings, normalizer: Normalizer) -> None:
        self.recognizer = recognizer
        self.settings = settings
        self.normalizer = normalizer
        self._prompt_tokens: dict[str, int] = {}

    def _token_cap(self, samples: int, lang: Literal["zh", "en"]) -> int:
        """``max_new_tokens`` for a chunk of ``samples``: the per-second cap, within what Whisper's 448-token
        context leaves after the hot words and the prompt (each at most 223 tokens, as faster-whisper cuts them)."""
        s = self.settings
        used = 8  # previous-text marker, start of transcript, language, task, (no) timestamps
        for text in (s.hotwords or "", s.zh_prompt if lang == "zh" else ""):
            if text:
                if text not in self._prompt_tokens:  # a racing first count only repeats the same work
                    self._prompt_tokens[text] = len(self.recognizer.model.hf_tokenizer.encode(" " + text).ids)
                used += min(self._prompt_tokens[text], 223)
        wanted = 16 + int(s.max_tokens_per_s * samples / SAMPLE_RATE_HZ)
        return max(16, min(wanted, 448 - used))

    @contextmanager
    def _fitted(self) -> Iterator[None]:
        """Fitted encoder windows for this thread (``WindowedWhisperModel.window`` is thread-local)."""
        window = getattr(self.recognizer.model, "window", None)
        if window is not None:
            window.min_s = self.settings.min_window_s
        try:
            yield
        finally:
            if window is not None:
                window.min_s = None

    def detect_language(
        self, chunks: Sequence[Chunk], pcm: Mapping[Channel, npt.NDArray[np.float32]]
    ) -> Literal["zh", "en"]:
        """The call's language from Whisper's detection on up to 20 s of speech, shared between the parties
        (one encoder pass); ``en`` on an English-only model."""
        if not self.recognizer.multilingual or not chunks:
            return "en"
        parties = sorted({c.channel for c in chunks})
        budget = _LANG_SAMPLE_S * SAMPLE_RATE_HZ // len(parties)
        parts = []
        for ch in parties:
            mine = sorted((c for c in chunks if c.channel == ch), key=lambda c: c.pieces[0].source_start)[:2]
            parts.append(np.concatenate([chunk_audio(c, pcm[ch]) for c in mine])[:budget])
        try:
            with self._fitted():
                _, _, probs = self.recognizer.model.detect_language(np.concatenate(parts))
        except (RuntimeError, ValueError) as exc:
            raise VoxdeskError("Speech recognition failed.") from exc
        return choose_language(probs)

    def decode(
        self, batch: Sequence[Chunk], pcm: Mapping[Channel, npt.NDArray[np.float32]], lang: Literal["zh", "en"]
    ) -> list[Turn]:
        """Decode ``batch`` together (one batched pass) and return its turns; pieces that got no word are decoded
        again one by one."""
        turns: list[Turn] = []
        for chunk, found in zip(batch, self._decode_chunks(batch, pcm, lang), strict=True):
            turns.extend(found)
            if len(chunk.pieces) < 2:
                continue
            min_samples = self.settings.retry_min_ms * SAMPLE_RATE_HZ // 1000
            for i, ok in enumerate(chunk.covered(found)):
                if not ok and chunk.pieces[i].length >= min_samples:
                    turns.extend(self._decode_chunks([chunk.piece_chunk(i)], pcm, lang)[0])
        return turns

    def _decode_chunks(
        self, batch: Sequence[Chunk], pcm: Mapping[Channel, npt.NDArray[np.float32]], lang: Literal["zh", "en"]
    ) -> list[list[Turn]]:
        audios = [chunk_audio(c, pcm[c.channel]) for c in batch]
        offsets = np.cumsum([0] + [len(a) for a in audios[:-1]])
        segments = self._run(np.concatenate(audios), offsets, lang, no_repeat=0)
        out: list[list[Turn]] = []
        for index, chunk in enumerate(batch):
            mine = [s for s in segments if _chunk_index(s, offsets) == index]
            shift = offsets[index] / SAMPLE_RATE_HZ
            if _looped(mine):  # a decoding loop: once more, repeated 4-grams forbidden
                retry = self._run(audios[index], np.zeros(1, dtype=np.int64), lang, no_repeat=4)
                if retry and _loop_ratio(retry) < _loop_ratio(mine):
                    mine, shift = retry, 0.0
            turns: list[Turn] = []
            seen: set[str] = set()
            for seg in mine:
                key = repeat_key(seg.text)
                if seg.no_speech_prob > _NO_SPEECH_PROB and seg.avg_logprob < _NO_SPEECH_LOGPROB:
                    continue  # Whisper's own rule: a silent window, whatever text came out
                if key in seen and _span_s(seg) < _MIN_REPEAT_S:
                    continue  # an earlier segment again in an instant: what is left of a loop, not speech
                seen.add(key)
                turns.extend(self._turns(chunk, seg, shift, lang))
            out.append(turns)
        return out

    def _turns(self, chunk: Chunk, seg: WhisperSegment, shift_s: float, lang: Literal["zh", "en"]) -> list[Turn]:
        words = [RawWord(w.word, w.start - shift_s, w.end - shift_s, w.probability) for w in seg.words or ()]
        logprob = seg.avg_logprob
        confidence = min(1.0, math.exp(logprob)) if math.isfinite(logprob) else None
        return segment_turns(
            chunk,
            seg.text,
            words,
            lang=lang,
            normalizer=self.normalizer,
            max_gap_ms=self.settings.max_gap_ms,
            confidence=confidence,
        )

    def _run(
        self,
        audio: npt.NDArray[np.float32],
        offsets: npt.NDArray[np.int64],
        lang: Literal["zh", "en"],
        *,
        no_repeat: int,
    ) -> list[WhisperSegment]:
        from faster_whisper import BatchedInferencePipeline

        starts, ends = offsets.tolist(), [*offsets[1:].tolist(), len(audio)]
        clips = [{"start": b / SAMPLE_RATE_HZ, "end": e / SAMPLE_RATE_HZ} for b, e in zip(starts, ends, strict=True)]
        s = self.settings
        try:
            with self._fitted():
                segments, _ = BatchedInferencePipeline(self.recognizer.model).transcribe(
                    audio,
                    language=lang if self.recognizer.multilingual else None,
                    clip_timestamps=clips,
                    batch_size=len(clips),
                    beam_size=s.beam_size,
                    word_timestamps=True,
                    without_timestamps=not s.timestamps,
                    initial_prompt=(s.zh_prompt or None) if lang == "zh" else None,
                    hotwords=s.hotwords,
                    no_repeat_ngram_size=no_repeat,
                    max_new_tokens=self._token_cap(max(e - b for b, e in zip(starts, ends, strict=True)), lang),
                )
                return list(segments)  # materialise the lazy generator on this worker thread
        except (RuntimeError, ValueError) as exc:
            raise VoxdeskError("Speech recognition failed.") from exc


def _span_s(segment: WhisperSegment) -> float:
    """How long a segment's speech lasts (s): its word times when it has them (a repeat at a chunk's end can get
    a segment span but its words squeezed into an instant), else the segment's own times."""
    words = segment.words or ()
    if words:
        return float(max(w.end for w in words) - min(w.start for w in words))
    return float(segment.end - segment.start)


def _loop_ratio(segments: Sequence[WhisperSegment]) -> float:
    """Compression ratio of a chunk's whole text: a loop may repeat a whole segment, not only words in it."""
    return compression_ratio("".join(s.text for s in segments))


def _looped(segments: Sequence[WhisperSegment]) -> bool:
    return any(s.compression_ratio > _LOOP_RATIO for s in segments) or _loop_ratio(segments) > _LOOP_RATIO


def _chunk_index(segment: WhisperSegment, offsets: npt.NDArray[np.int64]) -> int:
    """Which chunk of a batch a segment came from (a segment starts at or after its chunk's offset)."""
    sample = round(segment.start * SAMPLE_RATE_HZ) + SAMPLE_RATE_HZ // 100
    return int(np.searchsorted(offsets, sample, "right")) - 1
