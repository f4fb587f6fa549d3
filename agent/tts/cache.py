"""A disk cache of rendered fixed prompts ("Welcome to …", disclosures, menus) at the call's rate.

Each prompt is rendered once per voice and kept as a mono 16-bit WAV at ``<root>/<voice-id>/<rate>hz/
<sha256(text)>.wav`` (e.g. ``var/prompts/en_US-joe-medium-3f2a…/8000hz/9b1c….wav``). The voice id names the
voice and a digest of its files (by SHA-256 of their content, or by name, size and modification time), so a new or
retuned voice gets a fresh folder and never serves another voice's audio.

Blocking file I/O and, on a miss, CPU-bound synthesis on the calling thread: call it from a worker thread
(``asyncio.to_thread``) or warm it at start-up. Thread-safe; concurrent misses of one text render it once.
Writes are atomic (a temporary file renamed into place), so other processes sharing the folder never read a
half-written prompt.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import tempfile
import threading
from collections.abc import Iterable
from pathlib import Path

from agent.tts.base import SpeechSynthesizer
from agent.tts.piper_voice import PiperVoice
from core.audio import AudioClip, encode_audio, mix_to_mono, read_audio, resample
from core.errors import AudioFormatError, InvalidInputError, NotFoundError

__all__ = ["PromptCache", "voice_identity"]

log = logging.getLogger(__name__)

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_CHUNK = 1 << 20


def _file_digest(path: Path, *, content: bool) -> bytes:
    if content:
        h = hashlib.sha256()
        with path.open("rb") as fh:
            while block := fh.read(_CHUNK):
                h.update(block)
        return h.digest()
    st = path.stat()
    return f"{path.name}\0{st.st_size}\0{st.st_mtime_ns}".encode()


def voice_identity(model: Path, config: Path | None = None, *, content_hash: bool = False) -> str:
    """A folder-safe id for a voice: ``<model stem>-<16 hex digits>``, the digits from the model file and its
    config (``<model>.json`` by default). ``content_hash=True`` hashes their bytes (SHA-256; about 0.2 s for a 63 MB
    model) and so survives copies and touches; otherwise name, size and modification time (ns) are hashed, which is
    instant but changes when the file is copied. Blocking file I/O; raises ``OSError`` for a missing file."""
    config = config or model.with_name(model.name + ".json")
    h = hashlib.sha256()
    for path in (model, config):
        if path.is_file() or path == model:
            h.update(_file_digest(path, content=content_hash))
    stem = _UNSAFE.sub("_", model.name.removesuffix(".onnx")) or "voice"
    return f"{stem}-{h.hexdigest()[:16]}"


class PromptCache:
    """Fixed prompts rendered once by ``synthesizer`` and kept as WAV files at ``rate_hz`` Hz (the call's rate).

    ``root`` is the cache folder (``var/prompts``); ``voice_id`` names the voice (see :func:`voice_identity`, or
    use :meth:`for_piper`) and must change whenever the voice's audio would. :meth:`get` returns the prompt as a
    mono int16 clip at ``rate_hz``; a missing, unreadable or mismatched (rate, channels) file is rendered again.

    Thread-safe: one lock per text, so concurrent misses of one text render it once while different texts render
    in parallel. Blocking (file I/O; synthesis on a miss): use a worker thread.
    """

    def __init__(self, synthesizer: SpeechSynthesizer, voice_id: str, root: Path, *, rate_hz: int = 8000) -> None:
        if not voice_id or _UNSAFE.search(voice_id) or voice_id in {".", ".."}:
            raise InvalidInputError("voice_id must be a non-empty name of letters, digits, '.', '_' or '-'.")
        if rate_hz <= 0:
            raise InvalidInputError("rate_hz must be positive.")
        self.synthesizer = synthesizer
        self.voice_id = voice_id
        self.rate_hz = rate_hz
        """Rate of the cached files and of every clip returned (Hz)."""
        self.folder = Path(root) / voice_id / f"{rate_hz}hz"
        """Where this voice's prompts at this rate live."""
        self.renders = 0
        """Prompts rendered by this instance (misses), for reports and tests."""
        self._guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}

    @classmethod
    def for_piper(
        cls, voice: PiperVoice, root: Path, *, rate_hz: int = 8000, content_hash: bool = False
    ) -> PromptCache:
        """A cache for a loaded :class:`PiperVoice`, keyed by :func:`voice_identity` of its files (blocking
        file I/O; with ``content_hash`` it reads the whole model once)."""
        voice_id = voice_identity(voice.files.model, voice.files.config, content_hash=content_hash)
        return cls(voice, voice_id, root, rate_hz=rate_hz)

    @staticmethod
    def key(text: str) -> str:
        """The file stem for ``text``: the SHA-256 of its UTF-8 bytes, in hex."""
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def path_for(self, text: str) -> Path:
        """Where ``text``'s prompt is (or will be) stored."""
        return self.folder / f"{self.key(text)}.wav"

    def __contains__(self, text: object) -> bool:
        """Whether a file for ``text`` exists (it may still turn out unreadable)."""
        return isinstance(text, str) and self.path_for(text).is_file()

    def get(self, text: str) -> AudioClip:
        """``text`` spoken, as a mono int16 clip at :attr:`rate_hz`: read from the cache, or rendered, stored
        and returned on a miss (and when the stored file is corrupt). Raises :class:`InvalidInputError` when
        ``text`` gives no audio, and the synthesizer's own errors; a failed write is logged and the rendered clip
        is still returned. Blocking; any thread."""
        key = self.key(text)
        path = self.folder / f"{key}.wav"
        clip = self._read(path)
        if clip is not None:
            return clip
        with self._lock_for(key):
            clip = self._read(path)  # another thread may have rendered it while we waited
            if clip is not None:
                return clip
            clip = self._render(text)
            self._write(path, clip)
            return clip

    def warm(self, texts: Iterable[str]) -> int:
        """Make sure every text is cached (e.g. at start-up, before the first call); returns how many were
        rendered. Blocking; any thread."""
        before = self.renders
        for text in texts:
            self.get(text)
        return self.renders - before

    def _lock_for(self, key: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())

    def _read(self, path: Path) -> AudioClip | None:
        try:
            clip = read_audio(path)
        except NotFoundError:
            return None
        except AudioFormatError:
            log.warning("tts prompt cache file unreadable; rendering again", extra={"path": str(path)})
            return None
        if clip.sample_rate != self.rate_hz or clip.channels != 1:
            log.warning("tts prompt cache file has the wrong format; rendering again", extra={"path": str(path)})
            return None
        return clip

    def _render(self, text: str) -> AudioClip:
        clip = self.synthesizer.synthesize(text)
        pcm = clip.samples if clip.channels == 1 else mix_to_mono(clip.samples)
        if clip.sample_rate != self.rate_hz:
            pcm = resample(pcm, clip.sample_rate, self.rate_hz)
        if len(pcm) == 0:
            raise InvalidInputError("The prompt text gives no audio.")
        with self._guard:
            self.renders += 1
        return AudioClip(pcm, self.rate_hz, 1)

    def _write(self, path: Path, clip: AudioClip) -> None:
        data = encode_audio(clip, "WAV", subtype="PCM_16")
        tmp: str | None = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".tmp")
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            Path(tmp).replace(path)
            tmp = None
        except OSError as exc:
            log.warning("tts prompt cache write failed", extra={"path": str(path), "error": type(exc).__name__})
        finally:
            if tmp is not None:
                Path(tmp).unlink(missing_ok=True)
