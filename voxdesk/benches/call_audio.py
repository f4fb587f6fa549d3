"""What a benchmark caller says: real speech clips of one language strung together into one call's audio.

:func:`build_program` takes the manifest's clips of ``lang`` in order (repeating them as needed) and joins them,
each followed by ``gap_ms`` of silence (longer than the endpointer's silence hangover, so that every clip ends an
utterance), until the audio is at least ``seconds`` long; a final ``tail_ms`` of silence lets the last utterance
close while the call is still up. The result is 8 kHz mono PCM16 (what a G.711 call carries) with the position and
reference text of every clip, so that the transcripts the system produced can be scored against what was said.

Pure computation plus reading the clips; CLI process, any thread.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt

from core.audio import resample
from core.errors import InvalidInputError
from telephony.pcap import RtpPcapInfo, g711_payload, write_rtp_pcap
from voxdesk.evals.asr import ManifestEntry, load_pcm16k

__all__ = ["CallProgram", "SpokenClip", "build_program"]

RATE_HZ = 8_000


@dataclass(frozen=True)
class SpokenClip:
    """One clip inside a program: where it lies (ms from the start of the call's audio) and what it says."""

    clip_id: str
    start_ms: int
    end_ms: int
    text: str


@dataclass(frozen=True)
class CallProgram:
    """One call's audio (8 kHz mono PCM16) and the clips in it."""

    lang: Literal["zh", "en"]
    pcm8k: npt.NDArray[np.int16]
    clips: tuple[SpokenClip, ...]

    @property
    def duration_ms(self) -> int:
        return len(self.pcm8k) * 1000 // RATE_HZ

    @property
    def speech_ms(self) -> int:
        """Milliseconds covered by clips (speech with the clips' own short silences)."""
        return sum(c.end_ms - c.start_ms for c in self.clips)

    @property
    def reference(self) -> str:
        """The reference texts of all clips, in order, joined by spaces."""
        return " ".join(c.text for c in self.clips)

    def write_pcap(self, path: Path, codec: str = "pcmu") -> RtpPcapInfo:
        """The program as a pcap of G.711 RTP that sipp plays (20 ms packets)."""
        return write_rtp_pcap(path, g711_payload(self.pcm8k, codec), codec=codec)


def build_program(
    entries: list[ManifestEntry],
    lang: Literal["zh", "en"],
    seconds: float,
    *,
    gap_ms: int = 1500,
    lead_ms: int = 500,
    tail_ms: int = 1500,
    first: int = 0,
    cache: dict[str, npt.NDArray[np.int16]] | None = None,
) -> CallProgram:
    """Clips of ``lang`` from ``entries`` joined with ``gap_ms`` silences to at least ``seconds`` of audio
    (``lead_ms`` of silence first, ``tail_ms`` last), starting with the ``first``-th clip of that language (so
    that concurrent callers say different things at different times). ``cache`` (clip id → 8 kHz PCM) may be shared
    by the programs of several calls, so that each clip is read and resampled once. Raises
    :class:`InvalidInputError` when the manifest has no clip of that language."""
    chosen = [e for e in entries if e.lang == lang and e.audio.is_file()]
    if not chosen:
        raise InvalidInputError("the speech manifest has no clip of this language", lang=lang)
    if seconds <= 0:
        raise InvalidInputError("seconds must be positive", seconds=seconds)
    cache = {} if cache is None else cache
    parts: list[npt.NDArray[np.int16]] = [_silence(lead_ms)]
    clips: list[SpokenClip] = []
    position = len(parts[0])
    target = int(seconds * RATE_HZ)
    index = first
    while position < target:
        entry = chosen[index % len(chosen)]
        index += 1
        if entry.id not in cache:
            cache[entry.id] = resample(load_pcm16k(entry), 16_000, RATE_HZ)
        pcm = cache[entry.id]
        start_ms = position * 1000 // RATE_HZ
        clips.append(SpokenClip(entry.id, start_ms, start_ms + len(pcm) * 1000 // RATE_HZ, entry.text))
        gap = _silence(gap_ms)
        parts += [pcm, gap]
        position += len(pcm) + len(gap)
    parts.append(_silence(max(0, tail_ms - gap_ms)))
    return CallProgram(lang, np.concatenate(parts).astype(np.int16), tuple(clips))


def _silence(ms: int) -> npt.NDArray[np.int16]:
    return np.zeros(RATE_HZ * ms // 1000, dtype=np.int16)
