"""Turns what the navigator says into call audio: 20 ms frames of L16 mono at the call's rate, in chunks.

:meth:`NavigatorSpeaker.chunks` picks, per utterance and language:

* a **fixed** text (a flow prompt with a key, an approved answer script, a built-in prompt) in a language with a
  voice → the :class:`~agent.tts.cache.PromptCache` of that voice (rendered once, then read from disk), sent in
  chunks of ``chunk_ms``;
* any other text in a language with a voice → synthesised **sentence by sentence** (one
  :class:`~agent.tts.frames.CallAudioStream` across the sentences), each sentence's frames yielded as soon as it is
  ready, so the first sentence plays while the next is synthesised;
* a language without a voice → the pre-recorded prompt of the utterance's ``audio_key`` (the prompt key, or the
  script id of an answer) from :meth:`VoiceSet.prompts <agent.tts.voices.VoiceSet.prompts>`;
* otherwise nothing: the utterance is logged (language, key — never the text, which may carry customer data) and
  yields no chunk.

All synthesis, cache reads and framing run on the speaker's thread pool (Piper blocks for tens of ms per
sentence); :meth:`chunks` itself runs on the event loop and never blocks it. :meth:`warm` renders every fixed
prompt ahead of the first call (blocking, start-up). One speaker serves every call of an agent process.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Mapping
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import Any, Literal, TypeVar

from agent.navigator.flows import AnswerStep, FlowSet, Lang
from agent.navigator.handoff import BUILTIN_PROMPTS
from agent.tts.base import split_lead_clause
from agent.tts.cache import PromptCache
from agent.tts.frames import CallAudioStream, to_call_frames
from agent.tts.voices import LANGUAGES, VoiceSet
from core.errors import InvalidInputError, NotFoundError
from core.logging import get_logger
from knowledge.library import Question
from knowledge.script_models import ApprovedScripts

__all__ = ["NavigatorSpeaker", "SpeechSource", "playable_scripts"]

log = get_logger(__name__)
T = TypeVar("T")

SpeechSource = Literal["cache", "stream", "recorded", "none"]
"""Where an utterance's audio comes from (see the module docstring)."""


def playable_scripts(flows: FlowSet, questions: Mapping[str, Question]) -> list[str]:
    """Answer script ids the flows can read out: the script of every question routed to its answer (no flow of its
    own) and of every question an ``answer`` step names, sorted."""
    named = {s.question_id for f in flows.flows.values() for s in f.steps if isinstance(s, AnswerStep)}
    return sorted(
        {
            q.answer_script_id
            for q in questions.values()
            if q.answer_script_id and (q.question_id in named or flows.for_intent(q.question_id) is None)
        }
    )


class NavigatorSpeaker:
    """Call audio for navigator utterances (see the module docstring).

    ``caches`` holds one prompt cache per language that has a voice (its ``rate_hz`` must be ``rate_hz``, the
    media bridge's rate, 8,000 or 16,000 Hz); ``chunk_ms`` is the length of one :class:`~core.media.PlayAudio`
    chunk of a cached or recorded prompt (ms, whole frames); ``executor`` runs the blocking work (default: a pool
    of ``threads`` threads owned by the speaker).
    """

    def __init__(
        self,
        voices: VoiceSet,
        caches: Mapping[Lang, PromptCache] | None = None,
        *,
        rate_hz: int = 8000,
        frame_ms: int = 20,
        chunk_ms: int = 1000,
        executor: Executor | None = None,
        threads: int = 1,
    ) -> None:
        self.voices = voices
        self.caches: dict[Lang, PromptCache] = dict(caches or {})
        for cache in self.caches.values():
            if cache.rate_hz != rate_hz:
                raise InvalidInputError("a prompt cache's rate differs from the call rate", rate_hz=cache.rate_hz)
        if chunk_ms < frame_ms:
            raise InvalidInputError("chunk_ms must hold at least one frame")
        self.rate_hz = rate_hz
        self.frame_ms = frame_ms
        self.frames_per_chunk = chunk_ms // frame_ms
        self._executor = executor or ThreadPoolExecutor(max_workers=threads, thread_name_prefix="navigator-tts")
        self._own_executor = executor is None
        self.unspeakable = 0
        """Utterances that could not be spoken at all."""

    def source(self, lang: Lang, *, fixed: bool, audio_key: str | None) -> SpeechSource:
        """Where an utterance would come from (see the module docstring)."""
        if self.voices.synthesizer(lang) is not None:
            return "cache" if fixed and lang in self.caches else "stream"
        prompts = self.voices.prompts(lang)
        if audio_key is not None and prompts is not None and audio_key in prompts:
            return "recorded"
        return "none"

    async def chunks(
        self, lang: Lang, text: str, *, fixed: bool = False, audio_key: str | None = None
    ) -> AsyncIterator[bytes]:
        """``text`` in ``lang`` as chunks of whole 20 ms frames (L16 mono at :attr:`rate_hz`), each as soon as it
        is ready. ``fixed`` texts are cached; ``audio_key`` names the pre-recorded fallback. Yields nothing when
        the text cannot be spoken (logged). The blocking work runs on the pool; errors of the synthesizer or the
        cache propagate."""
        source = self.source(lang, fixed=fixed, audio_key=audio_key)
        if source == "stream":
            async for chunk in self._stream(lang, text):
                yield chunk
            return
        if source == "none":
            self.unspeakable += 1
            log.warning(
                "navigator utterance cannot be spoken: no voice and no pre-recorded prompt",
                lang=lang,
                prompt_key=audio_key,
                dynamic=audio_key is None,
            )
            return
        frames = await self._run(self._whole, lang, text, audio_key, source)
        for i in range(0, len(frames), self.frames_per_chunk):
            yield b"".join(frames[i : i + self.frames_per_chunk])

    def fixed_texts(self, flows: FlowSet, lang: Lang) -> list[str]:
        """The keyed prompts of ``flows`` (and the built-in ones) in ``lang`` that have no ``{variable}``."""
        texts = [t.in_lang(lang) for t in (*flows.prompts.values(), *BUILTIN_PROMPTS.values())]
        return list(dict.fromkeys(t for t in texts if "{" not in t))

    def warm(
        self,
        flows: FlowSet,
        *,
        questions: Mapping[str, Question] | None = None,
        scripts: ApprovedScripts | None = None,
        stop: threading.Event | None = None,
    ) -> dict[Lang, int]:
        """Render every fixed prompt of ``flows``, then every approved answer script they can play
        (:func:`playable_scripts`), into the cache of each language that has one; returns the renders per language.
        Blocking (synthesis, file and database I/O; about a second per prompt not yet cached), on the calling
        thread: start-up, or a background thread (the cache is thread-safe). Setting ``stop`` ends it early."""
        answers: dict[Lang, list[str]] = {lang: [] for lang in LANGUAGES}
        if questions is not None and scripts is not None:
            for script_id in playable_scripts(flows, questions):
                try:
                    script = scripts.approved(script_id)
                except NotFoundError:
                    log.warning("navigator answer script has no approved version", script_id=script_id)
                    continue
                for lang in LANGUAGES:
                    answers[lang].append(script.text_zh if lang == "zh" else script.text_en)
        rendered: dict[Lang, int] = {}
        for lang, cache in self.caches.items():
            texts = [t for t in (*self.fixed_texts(flows, lang), *answers[lang]) if t.strip()]
            count = 0
            for text in texts:
                if stop is not None and stop.is_set():
                    break
                try:
                    count += cache.warm([text])
                except InvalidInputError:
                    log.warning("navigator prompt gives no audio", lang=lang)
            rendered[lang] = count
            log.info("navigator prompts cached", lang=lang, prompts=len(texts), rendered=count)
        return rendered

    def close(self) -> None:
        """Stop the speaker's own pool (one it was given is left alone)."""
        if self._own_executor:
            self._executor.shutdown(wait=False, cancel_futures=True)

    # --- internals ------------------------------------------------------------------------------------------

    async def _stream(self, lang: Lang, text: str) -> AsyncIterator[bytes]:
        synthesizer = self.voices.synthesizer(lang)
        assert synthesizer is not None
        stream = CallAudioStream(self.rate_hz, self.frame_ms)
        # the first sentence of an answer made on the fly goes in two pieces, so the caller hears it sooner
        pieces = split_lead_clause(text, longer_than=60 if lang == "en" else 20, min_chars=12 if lang == "en" else 4)
        sentences = (clip for piece in pieces for clip in synthesizer.synthesize_sentences(piece))

        def step() -> list[bytes] | None:
            clip = next(sentences, None)
            return None if clip is None else stream.push(clip)

        while (frames := await self._run(step)) is not None:
            if frames:
                yield b"".join(frames)
        tail = await self._run(stream.finish)
        if tail:
            yield b"".join(tail)

    def _whole(self, lang: Lang, text: str, audio_key: str | None, source: SpeechSource) -> list[bytes]:
        """Pool thread: a cached or recorded utterance as frames."""
        if source == "cache":
            clip = self.caches[lang].get(text)
        else:
            prompts = self.voices.prompts(lang)
            assert prompts is not None and audio_key is not None
            clip = prompts.get(audio_key)
        return to_call_frames(clip, self.rate_hz, self.frame_ms)

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, lambda: fn(*args))
