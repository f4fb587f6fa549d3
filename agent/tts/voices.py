"""Which voice speaks each language of a navigator line, and what happens where there is none.

Per language (``zh``, ``en``) a :class:`VoiceSet` holds a synthesizer or none: the bundled English Piper voice,
any Piper voice given by path (``<voice>.onnx`` with ``<voice>.onnx.json``; e.g. a zh_CN voice the bank
supplies), and, where no voice exists, a configured :class:`PrerecordedPrompts` set (a folder of WAVs named by
prompt key) as the fallback. :meth:`VoiceSet.describe` says what each language got, in words, for the start-up
report; nothing is dropped silently.

Loading is blocking (about 1 s per Piper voice) and happens on the calling thread at start-up. A built
:class:`VoiceSet` is read-only and safe to share between threads; :class:`PrerecordedPrompts` caches decoded
prompts under a lock.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final, get_args

from agent.models import PiperVoiceFiles, piper_voice_files
from agent.tts.base import SpeechSynthesizer
from agent.tts.piper_voice import PiperVoice
from core.audio import AudioClip, read_audio
from core.errors import ConfigError, ModelMissingError, NotFoundError
from core.events import Lang

__all__ = ["LanguageVoice", "PrerecordedPrompts", "PromptMissingError", "VoiceLoader", "VoiceSet"]

log = logging.getLogger(__name__)

LANGUAGES: Final[tuple[Lang, ...]] = get_args(Lang)

VoiceLoader = Callable[[PiperVoiceFiles | None], SpeechSynthesizer]
"""Loads a Piper voice: the given files, or the bundled English voice for ``None`` (default:
:meth:`PiperVoice.load`); raises :class:`ModelMissingError`. Injectable so tests need no models."""


class PromptMissingError(NotFoundError):
    """A pre-recorded prompt set has no WAV for the requested key."""

    code = "prompt_missing"

    def __init__(self, key: str, folder: Path) -> None:
        super().__init__("No pre-recorded prompt for this key.", key=key, folder=str(folder))
        self.key = key
        self.folder = folder

    def __str__(self) -> str:
        return f"no pre-recorded prompt {self.key!r} in {self.folder} (expected {self.folder / (self.key + '.wav')})"


class PrerecordedPrompts:
    """A folder of recorded prompts, one ``<key>.wav`` per prompt (e.g. ``greeting.wav``, ``lost_card_ask_last4.wav``),
    any rate, mono or stereo (see :func:`core.audio.read_audio`); frame them with
    :func:`agent.tts.frames.to_call_frames`.

    The folder is listed once, at construction (blocking); raises :class:`ConfigError` when it is not a folder.
    :meth:`get` decodes a prompt on first use and keeps it in memory. Thread-safe.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise ConfigError("The pre-recorded prompts folder does not exist.", folder=str(self.folder))
        self._paths: dict[str, Path] = {
            p.stem: p for p in sorted(self.folder.iterdir()) if p.suffix.lower() == ".wav" and p.is_file()
        }
        self._clips: dict[str, AudioClip] = {}
        self._lock = threading.Lock()

    @property
    def keys(self) -> tuple[str, ...]:
        """The prompt keys (file stems), sorted."""
        return tuple(sorted(self._paths))

    def __len__(self) -> int:
        return len(self._paths)

    def __contains__(self, key: object) -> bool:
        return key in self._paths

    def path(self, key: str) -> Path:
        """The WAV file of ``key``; raises :class:`PromptMissingError`."""
        try:
            return self._paths[key]
        except KeyError:
            raise PromptMissingError(key, self.folder) from None

    def get(self, key: str) -> AudioClip:
        """The recorded prompt ``key`` as an int16 clip at its own rate. Raises :class:`PromptMissingError` for an
        unknown key and :class:`core.errors.AudioFormatError` for an unreadable file. Blocking on first use."""
        with self._lock:
            clip = self._clips.get(key)
        if clip is None:
            clip = read_audio(self.path(key))
            with self._lock:
                self._clips[key] = clip
        return clip


@dataclass(frozen=True)
class LanguageVoice:
    """What one language of a navigator line speaks with."""

    lang: Lang
    synthesizer: SpeechSynthesizer | None
    """The voice, or ``None`` when there is none for this language."""
    voice_name: str | None
    """The voice's name (``en_US-joe-medium``) or ``None``."""
    prompts: PrerecordedPrompts | None
    """The pre-recorded fallback, used only when there is no synthesizer."""
    problems: tuple[str, ...] = ()
    """Why a configured voice or prompt set is not in use, in words."""

    @property
    def can_speak(self) -> bool:
        """Whether this language can say anything: a voice, or at least one recorded prompt."""
        return self.synthesizer is not None or (self.prompts is not None and len(self.prompts) > 0)

    def describe(self) -> str:
        """One line for the start-up report."""
        notes = "".join(f" ({p})" for p in self.problems)
        if self.synthesizer is not None:
            line = f"{self.lang}: Piper voice {self.voice_name}"
            if self.prompts is not None:
                line += f"; pre-recorded prompts in {self.prompts.folder} ({len(self.prompts)} prompts) not needed"
            return line + notes
        if self.prompts is not None and len(self.prompts) > 0:
            return (
                f"{self.lang}: no Piper voice{notes}; using the pre-recorded prompts in {self.prompts.folder} "
                f"({len(self.prompts)} prompts): only those prompts can be spoken"
            )
        return f"{self.lang}: no voice and no pre-recorded prompts{notes}: navigator lines in {self.lang} cannot speak"


class VoiceSet:
    """The voices of all languages (``zh``, ``en``); build it with :meth:`load` at start-up.

    Read-only after construction; share it between threads.
    """

    def __init__(self, voices: Mapping[Lang, LanguageVoice]) -> None:
        self._voices: dict[Lang, LanguageVoice] = {
            lang: voices.get(lang) or LanguageVoice(lang, None, None, None) for lang in LANGUAGES
        }

    @classmethod
    def load(
        cls,
        *,
        voices: Mapping[Lang, Path] | None = None,
        prompt_dirs: Mapping[Lang, Path] | None = None,
        bundled_english: bool = True,
        loader: VoiceLoader | None = None,
    ) -> VoiceSet:
        """Load the voice of each language: ``voices[lang]`` (a Piper ``.onnx`` path) when given, else the bundled
        en_US voice for ``en`` when ``bundled_english``; ``prompt_dirs[lang]`` is the pre-recorded fallback for a
        language left without a voice. A voice or folder that cannot be loaded is recorded as a problem (shown by
        :meth:`describe` and logged), never raised, so that one broken language does not stop the others.

        Blocking (about 1 s per Piper voice), on the calling thread; run it at start-up.
        """
        load = loader or _load_piper
        entries: dict[Lang, LanguageVoice] = {}
        for lang in LANGUAGES:
            path = (voices or {}).get(lang)
            problems: list[str] = []
            synthesizer: SpeechSynthesizer | None = None
            name: str | None = None
            if path is not None or (lang == "en" and bundled_english):
                synthesizer, name, problem = _try_load(load, lang, path)
                if problem:
                    problems.append(problem)
            prompts: PrerecordedPrompts | None = None
            folder = (prompt_dirs or {}).get(lang)
            if folder is not None:
                try:
                    prompts = PrerecordedPrompts(folder)
                except ConfigError:
                    problems.append(f"the pre-recorded prompts folder {folder} does not exist")
                else:
                    if len(prompts) == 0:
                        problems.append(f"the pre-recorded prompts folder {folder} holds no .wav files")
            entries[lang] = LanguageVoice(lang, synthesizer, name, prompts, tuple(problems))
        voice_set = cls(entries)
        for entry in voice_set._voices.values():
            if not entry.can_speak:
                log.error("tts language has no voice and no pre-recorded prompts", extra={"lang": entry.lang})
            elif entry.synthesizer is None:
                log.warning("tts language falls back to pre-recorded prompts", extra={"lang": entry.lang})
        return voice_set

    def __getitem__(self, lang: Lang) -> LanguageVoice:
        """The entry of ``lang``."""
        return self._voices[lang]

    def synthesizer(self, lang: Lang) -> SpeechSynthesizer | None:
        """The voice of ``lang``, or ``None`` when that language has none (use :meth:`prompts` then)."""
        return self._voices[lang].synthesizer

    def prompts(self, lang: Lang) -> PrerecordedPrompts | None:
        """The pre-recorded prompt set of ``lang``, if one is configured and found."""
        return self._voices[lang].prompts

    def can_speak(self, lang: Lang) -> bool:
        """Whether ``lang`` has a voice or at least one recorded prompt."""
        return self._voices[lang].can_speak

    def mute_languages(self) -> list[Lang]:
        """Languages that cannot say anything at all (for a start-up check that refuses such a line)."""
        return [lang for lang, entry in self._voices.items() if not entry.can_speak]

    def describe(self) -> list[str]:
        """One line per language for the start-up report, e.g. ``"en: Piper voice en_US-joe-medium"``,
        ``"zh: no Piper voice; using the pre-recorded prompts in DIR (12 prompts): only those prompts can be
        spoken"`` or ``"zh: no voice and no pre-recorded prompts: navigator lines in zh cannot speak"``."""
        return [self._voices[lang].describe() for lang in LANGUAGES]


def _load_piper(files: PiperVoiceFiles | None) -> SpeechSynthesizer:
    return PiperVoice.load(files)


def _try_load(
    load: VoiceLoader, lang: Lang, path: Path | None
) -> tuple[SpeechSynthesizer | None, str | None, str | None]:
    """``(synthesizer, name, problem)``: a loaded voice, or ``None`` and why not."""
    label = str(path) if path is not None else "the bundled en_US voice"
    try:
        files = piper_voice_files(path) if path is not None else None
        synthesizer = load(files)
    except ModelMissingError as exc:
        log.warning("tts voice could not be loaded", extra={"lang": lang, "error": exc.message})
        return None, None, f"Piper voice {label} could not be loaded: {exc.message}; {exc.remedy}"
    voice_files = files or getattr(synthesizer, "files", None)
    name = voice_files.model.name.removesuffix(".onnx") if isinstance(voice_files, PiperVoiceFiles) else label
    problem = None
    if isinstance(voice_files, PiperVoiceFiles) and not voice_files.language.lower().startswith(lang):
        problem = f"its config says language {voice_files.language}"
    return synthesizer, name, problem
