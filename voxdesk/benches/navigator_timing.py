"""Turn timing of ``voxdesk bench navigator``: caller end of speech → the bot's first audio packet, per stage.

Pure functions over what a benchmark run leaves behind: the call's stereo recording (customer left, on the media
worker's bridge timeline), the wall-clock time of the recording's first customer frame and the mean jitter-buffer
delay (the media worker's statistics file), when each caller turn was started, how long its speech is, and the
call's events.

* **Caller end of speech on the wire**: the first frame of the turn's speech on the left channel after the turn was
  started (RMS above a threshold), plus the speech's known length, converted to wall time, minus the jitter
  buffer's delay (the recording hears the caller that much after the packets arrived).
* **First bot audio packet**: ``BotAudio(started)`` of the first segment that starts after that instant: the media
  clock tick that hands the frame to the bridge, which encodes and sends it on the same tick.
* **Stages**: end of speech → ``FinalTranscript`` (endpointing + recognition), → ``IntentDetected`` (bus +
  classifier, for turns the navigator classifies), → ``BotSaid`` (dialog + first sentence of speech ready and
  sent), → ``BotAudio(started)`` (play channel + bridge tick). All times are epoch milliseconds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from core.events import BotAudio, BotSaid, CallEnded, Event, FinalTranscript, IntentDetected

FRAME_MS = 20
SPEECH_RMS = 300.0
"""Frame RMS (int16) above which the caller's channel counts as speech; silence on G.711 is under 20."""


@dataclass(frozen=True)
class TurnClock:
    """One caller turn as the driver played it."""

    started_ms: float
    """Epoch ms at which the caller's audio source switched to the turn's WAV."""
    speech_ms: float
    """Length of the turn's speech, first to last voiced sample of the WAV (ms)."""


@dataclass
class TurnTiming:
    """The measured timing of one caller turn (epoch ms; ``None`` where it was not seen)."""

    end_of_speech_ms: float | None
    first_audio_ms: float | None = None
    final_ms: float | None = None
    intent_ms: float | None = None
    said_ms: float | None = None
    stages: dict[str, float] = field(default_factory=dict)

    @property
    def latency_ms(self) -> float | None:
        """Caller end of speech → first bot audio packet (ms)."""
        if self.end_of_speech_ms is None or self.first_audio_ms is None:
            return None
        return self.first_audio_ms - self.end_of_speech_ms


def bot_quiet(events: Sequence[Event], since_ms: float, quiet_ms: float, now_ms: float) -> bool:
    """Whether a caller may speak its next turn: the call ended, or the bot started speaking after ``since_ms``,
    every segment it started has completed or been stopped, and no ``BotAudio`` came for ``quiet_ms`` before
    ``now_ms`` (all epoch ms). ``events``: the call's events."""
    if any(isinstance(e, CallEnded) for e in events):
        return True
    audio = [e for e in events if isinstance(e, BotAudio)]
    spoke = any(e.state == "started" and e.at_ms > since_ms for e in audio)
    started = {e.segment for e in audio if e.state == "started"}
    closed = {e.segment for e in audio if e.state in ("completed", "stopped")}
    last = max((e.at_ms for e in audio), default=0.0)
    return spoke and started <= closed and now_ms - last >= quiet_ms


def frame_rms(channel: npt.NDArray[np.int16], rate_hz: int) -> npt.NDArray[np.float64]:
    """RMS of each 20 ms frame of ``channel``."""
    size = rate_hz * FRAME_MS // 1000
    count = len(channel) // size
    frames = channel[: count * size].astype(np.float64).reshape(count, size)
    return np.asarray(np.sqrt((frames**2).mean(axis=1)), dtype=np.float64)


def speech_onset_ms(rms: npt.NDArray[np.float64], after_ms: float, *, threshold: float = SPEECH_RMS) -> float | None:
    """Offset (ms, on the recording's timeline) of the first speech frame at or after ``after_ms``."""
    start = max(0, int(after_ms // FRAME_MS))
    loud = np.nonzero(rms[start:] > threshold)[0]
    return float((start + int(loud[0])) * FRAME_MS) if len(loud) else None


def time_turns(
    turns: Sequence[TurnClock],
    rms: npt.NDArray[np.float64],
    *,
    recording_start_ms: float,
    jitter_delay_ms: float,
    events: Sequence[Event],
) -> list[TurnTiming]:
    """The timing of each turn of one call (see the module docstring).

    ``rms`` is :func:`frame_rms` of the recording's left channel, whose frame 0 reached the bridge at
    ``recording_start_ms`` (epoch ms); ``events`` are the call's events in any order.
    """
    starts = sorted(e.at_ms for e in events if isinstance(e, BotAudio) and e.state == "started")
    finals = sorted(e.at.timestamp() * 1000 for e in events if isinstance(e, FinalTranscript) and e.leg == "customer")
    intents = sorted(e.at.timestamp() * 1000 for e in events if isinstance(e, IntentDetected))
    said = sorted(e.at.timestamp() * 1000 for e in events if isinstance(e, BotSaid))
    out: list[TurnTiming] = []
    for index, turn in enumerate(turns):
        onset = speech_onset_ms(rms, turn.started_ms - recording_start_ms)
        if onset is None:
            out.append(TurnTiming(None))
            continue
        eos = recording_start_ms + onset + turn.speech_ms - jitter_delay_ms
        limit = turns[index + 1].started_ms if index + 1 < len(turns) else float("inf")
        timing = TurnTiming(eos)
        timing.first_audio_ms = _first_between(starts, eos, limit)
        timing.final_ms = _first_between(finals, eos, limit)
        timing.said_ms = _first_between(said, eos, limit)
        timing.intent_ms = _first_between(intents, eos, limit)
        _stages(timing)
        out.append(timing)
    return out


def _first_between(times: Sequence[float], low: float, high: float) -> float | None:
    return next((t for t in times if low < t < high), None)


def _stages(t: TurnTiming) -> None:
    if t.end_of_speech_ms is None or t.first_audio_ms is None:
        return
    marks = [("final", t.final_ms), ("intent", t.intent_ms), ("said", t.said_ms), ("audio", t.first_audio_ms)]
    previous = t.end_of_speech_ms
    for name, mark in marks:
        if mark is None or mark > t.first_audio_ms or mark < previous:
            continue
        t.stages[name] = mark - previous
        previous = mark


__all__ = ["SPEECH_RMS", "TurnClock", "TurnTiming", "bot_quiet", "frame_rms", "speech_onset_ms", "time_turns"]
