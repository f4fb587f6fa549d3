"""The scripted callers of ``voxdesk bench navigator``: the YAML script, its caller turns as speech.

:func:`load_script` reads ``navigator_script.yaml`` (or the bank's own file): calls of caller turns, each a text
to say, optionally the question id the navigator must recognise, and whether the call must stay with the bot.
:class:`TurnVoice` renders a turn with the bundled Piper voice (a little slower than the bot's, so the two voices
differ) into a WAV file holding only the speech (silence trimmed, so the speech length is known to the sample),
cached by text under a folder; ``{last4}`` and ``{birth}`` are filled for a demo customer first.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Literal

import numpy as np
import yaml

from core.audio import AudioClip, read_audio, write_audio
from core.errors import ConfigError

SCRIPT = Path(__file__).with_name("navigator_script.yaml")
_DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December")  # fmt: skip
_TRIM_LEVEL = 300  # int16 amplitude below which a sample at either end counts as silence


@dataclass(frozen=True)
class ScriptTurn:
    say: str
    intent: str | None = None


@dataclass(frozen=True)
class ScriptCall:
    call_id: str
    caller: Literal["known", "unknown"]
    expect: Literal["contained", "transfer"]
    turns: tuple[ScriptTurn, ...]


def load_script(path: Path = SCRIPT) -> list[ScriptCall]:
    """The calls of a script file; :class:`ConfigError` naming the call for anything malformed."""
    try:
        data: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError("navigator bench script unreadable", path=str(path)) from exc
    calls: list[ScriptCall] = []
    for index, raw in enumerate((data or {}).get("calls") or []):
        try:
            turns = tuple(ScriptTurn(str(t["say"]), t.get("intent")) for t in raw["turns"])
            call = ScriptCall(str(raw["id"]), raw.get("caller", "unknown"), raw.get("expect", "contained"), turns)
        except (KeyError, TypeError) as exc:
            raise ConfigError("navigator bench script: malformed call", path=str(path), call=index + 1) from exc
        if call.caller not in ("known", "unknown") or call.expect not in ("contained", "transfer") or not turns:
            raise ConfigError("navigator bench script: bad caller, expect or turns", call=call.call_id)
        calls.append(call)
    if not calls:
        raise ConfigError("navigator bench script has no calls", path=str(path))
    return calls


def spoken_digits(digits: str) -> str:
    """``"0425"`` → ``"zero four two five"``."""
    return " ".join(_DIGITS[int(d)] for d in digits)


def spoken_date(day: date) -> str:
    """``date(1980, 5, 1)`` → ``"May 1st, 1980"``."""
    n = day.day
    suffix = "th" if 11 <= n % 100 <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{_MONTHS[day.month - 1]} {n}{suffix}, {day.year}"


def fill(text: str, *, last4: str | None, birth: date | None) -> str:
    """The turn's text with ``{last4}`` / ``{birth}`` spoken for the caller."""
    if "{last4}" in text:
        if last4 is None:
            raise ConfigError("a turn needs card digits but the caller is unknown")
        text = text.replace("{last4}", spoken_digits(last4))
    if "{birth}" in text:
        if birth is None:
            raise ConfigError("a turn needs a date of birth but the caller is unknown")
        text = text.replace("{birth}", spoken_date(birth))
    return text


@dataclass(frozen=True)
class RenderedTurn:
    path: Path
    speech_ms: float
    """Length of the speech in the file (the whole file: silence is trimmed), ms."""


class TurnVoice:
    """Caller speech from the bundled Piper voice, cached in ``folder`` (blocking; the bench's thread)."""

    def __init__(self, folder: Path, *, length_scale: float = 1.08) -> None:
        self.folder = folder
        self.length_scale = length_scale
        self._voice: Any = None

    def render(self, text: str) -> RenderedTurn:
        """A WAV of ``text`` spoken (22.05 kHz mono), silence trimmed at both ends."""
        key = hashlib.sha256(f"{self.length_scale}|{text}".encode()).hexdigest()[:24]
        path = self.folder / f"turn-{key}.wav"
        if not path.is_file():
            self.folder.mkdir(parents=True, exist_ok=True)
            clip = self._synthesize(text)
            write_audio(path, clip, subtype="PCM_16")
        clip = read_audio(path)
        return RenderedTurn(path, 1000.0 * len(clip.samples) / clip.sample_rate)

    def _synthesize(self, text: str) -> AudioClip:
        if self._voice is None:
            from piper import PiperVoice as Piper
            from piper import SynthesisConfig

            from agent.models import bundled_voice_path, piper_voice_files

            files = piper_voice_files(bundled_voice_path())
            self._voice = (Piper.load(files.model, files.config), SynthesisConfig)
        voice, config_cls = self._voice
        chunks = list(voice.synthesize(text, syn_config=config_cls(length_scale=self.length_scale)))
        pcm = np.concatenate([np.asarray(c.audio_int16_array, dtype=np.int16) for c in chunks])
        loud = np.nonzero(np.abs(pcm.astype(np.int32)) > _TRIM_LEVEL)[0]
        if len(loud):
            pcm = pcm[int(loud[0]) : int(loud[-1]) + 1]
        return AudioClip(pcm, int(chunks[0].sample_rate), 1)


__all__ = ["SCRIPT", "RenderedTurn", "ScriptCall", "ScriptTurn", "TurnVoice", "fill", "load_script",
           "spoken_date", "spoken_digits"]  # fmt: skip
