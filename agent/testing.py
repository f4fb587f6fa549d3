"""Test doubles of the agent room, for fast and deterministic unit tests of the live assist logic.

:class:`ScriptedIntents` stands in for the intent classifier (an
:class:`agent.assist.suggest.IntentSource`): it answers from a list of rules and records what it was asked, so a
test can prove that a pre-fetched partial saved a classification. :class:`FakeApprovedScripts` is an in-memory
:class:`knowledge.script_models.ApprovedScripts`; :func:`answer_scripts` approves one answer per library question.
:func:`sample_customer` builds a fictional, identified customer with a few overrides. :class:`ToneSynthesizer` is a
deterministic :class:`agent.tts.base.SpeechSynthesizer` (a tone per sentence, its length set by the text).

No I/O, no models. :class:`ScriptedIntents` may be called from the hub's worker threads (``calls`` is appended
under a lock); the other doubles are for one thread.
"""

from __future__ import annotations

import builtins
import re
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal

import numpy as np

from agent.tts.base import split_sentences
from core.audio import AudioClip, PcmArray
from core.errors import NotFoundError
from core.ids import CustomerId
from knowledge.compliance import ScriptKind
from knowledge.library import Question
from knowledge.script_models import ApprovedScript
from nlu.intents import IntentResult, IntentScore
from profiles.models import Consent, Customer, Holding

__all__ = [
    "FakeApprovedScripts",
    "IntentRule",
    "ScriptedIntents",
    "ToneSynthesizer",
    "answer_scripts",
    "sample_customer",
]

_FIXED_TIME = datetime(2026, 1, 1, tzinfo=UTC)

IntentRule = tuple[str | re.Pattern[str], str, float]
"""``(pattern, question_id, confidence)``: a plain string matches as a case-insensitive substring, a compiled
pattern with ``search``; ``confidence`` is the calibrated probability in [0, 1] reported when it matches."""


class ScriptedIntents:
    """An intent source that classifies by rules (see :data:`IntentRule`).

    Every matching rule contributes its question id; ``top`` holds the best ``k`` distinct labels, highest
    confidence first (the first rule wins ties). The result is out of scope when no rule matches (``top`` is then
    empty) or when the best confidence is under ``threshold`` (like the real classifier's rejection threshold).
    Each call's text is appended to :attr:`calls`.
    """

    def __init__(self, rules: Iterable[IntentRule] = (), *, threshold: float = 0.0) -> None:
        self.rules: tuple[IntentRule, ...] = tuple(rules)
        self.threshold = threshold
        self.calls: list[str] = []
        """Texts classified so far, oldest first (thread-safe append)."""
        self._lock = threading.Lock()

    def classify(self, text: str, k: int = 3) -> IntentResult:
        """The scripted intents of ``text`` (any thread)."""
        with self._lock:
            self.calls.append(text)
        best: dict[str, float] = {}
        for pattern, question_id, confidence in self.rules:
            if _matches(pattern, text) and confidence > best.get(question_id, -1.0):
                best[question_id] = confidence
        ranked = sorted(best.items(), key=lambda item: -item[1])[:k]  # stable: rule order breaks ties
        top = tuple(IntentScore(label, confidence) for label, confidence in ranked)
        return IntentResult(top, out_of_scope=not top or top[0].confidence < self.threshold)


def _matches(pattern: str | re.Pattern[str], text: str) -> bool:
    if isinstance(pattern, str):
        return pattern.lower() in text.lower()
    return pattern.search(text) is not None


class FakeApprovedScripts:
    """In-memory approved scripts: one approved version per script, as in :class:`knowledge.scripts.ScriptStore`."""

    def __init__(self, scripts: Iterable[ApprovedScript] = ()) -> None:
        self._scripts: dict[str, ApprovedScript] = {s.script_id: s for s in scripts}

    def add(
        self,
        script_id: str,
        *,
        text_zh: str = "",
        text_en: str = "",
        title_zh: str = "",
        title_en: str = "",
        kind: ScriptKind = "answer",
        version: int | None = None,
        product_ids: Sequence[str] = (),
        audience_risk: str | None = None,
        approved_at: datetime = _FIXED_TIME,
    ) -> ApprovedScript:
        """Approve a version of ``script_id`` (replacing the approved one); returns it.

        ``version`` defaults to one more than the version it replaces (1 for a new script); empty texts default to
        ``"<script_id> zh"`` / ``"<script_id> en"``.
        """
        old = self._scripts.get(script_id)
        script = ApprovedScript(
            script_id=script_id,
            version=version if version is not None else (old.version + 1 if old else 1),
            kind=kind,
            title_zh=title_zh,
            title_en=title_en,
            text_zh=text_zh or f"{script_id} zh",
            text_en=text_en or f"{script_id} en",
            product_ids=tuple(product_ids),
            audience_risk=audience_risk,
            approved_at=approved_at,
        )
        self._scripts[script_id] = script
        return script

    def retire(self, script_id: str) -> None:
        """Remove the approved version of ``script_id`` (no error when there is none)."""
        self._scripts.pop(script_id, None)

    def approved(self, script_id: str) -> ApprovedScript:
        """The approved version of ``script_id``; raises :class:`NotFoundError` when there is none."""
        try:
            return self._scripts[script_id]
        except KeyError:
            raise NotFoundError("no approved version of this script", script_id=script_id) from None

    def approved_all(self, kind: str | None = None) -> builtins.list[ApprovedScript]:
        """Every approved script (of one ``kind`` if given), ordered by id."""
        return [s for _, s in sorted(self._scripts.items()) if kind is None or s.kind == kind]


def answer_scripts(questions: Iterable[Question]) -> FakeApprovedScripts:
    """Approved answers (version 1) for every question that names an ``answer_script_id``, titled like it."""
    scripts = FakeApprovedScripts()
    for q in questions:
        if q.answer_script_id is not None:
            scripts.add(
                q.answer_script_id,
                title_zh=q.text_zh,
                title_en=q.text_en,
                text_zh=f"答：{q.text_zh}",
                text_en=f"Answer: {q.text_en}",
            )
    return scripts


def sample_customer(**overrides: object) -> Customer:
    """A fictional identified customer: gold tier, risk C3, born 1985-06-15, payroll group, marketing and
    recording consent granted, holding the sample one-year deposit (``T-DEP-1Y``, 100,000 CNY).

    ``overrides`` replace fields (validated like any :class:`Customer`), e.g. ``risk_tolerance="C2"``,
    ``consents=()`` or ``holdings=()``.
    """
    fields: dict[str, object] = {
        "customer_id": CustomerId("C-TEST-0001"),
        "name": "测试客户",
        "phones": ("+8613800000000",),
        "language": "zh",
        "birth_date": date(1985, 6, 15),
        "aum_cny": Decimal("120000"),
        "risk_tolerance": "C3",
        "tier": "gold",
        "groups": ("payroll",),
        "holdings": (Holding(product_id="T-DEP-1Y", amount_cny=Decimal("100000")),),
        "consents": (
            Consent(kind="marketing_calls", granted=True, updated_at=_FIXED_TIME, source="test"),
            Consent(kind="recording", granted=True, updated_at=_FIXED_TIME, source="test"),
        ),
    }
    fields.update(overrides)
    return Customer.model_validate(fields)


class ToneSynthesizer:
    """A :class:`agent.tts.base.SpeechSynthesizer` that "speaks" each sentence as a sine tone, deterministically.

    Each sentence of :func:`agent.tts.base.split_sentences` becomes ``base_ms + ms_per_char * len(sentence)`` ms
    of a ``frequency_hz`` Hz tone at peak ``amplitude`` (int16 units) and ``sample_rate_hz`` Hz (22,050 like
    Piper's medium voices), with a raised-cosine fade of ``fade_ms`` ms at both ends (0: the tone starts and stops
    abruptly, mid-waveform) and then ``pause_ms`` ms of silence. ``delay_s`` seconds of sleep per sentence stand
    in for inference time (to widen races in concurrency tests).

    Thread-safe: :attr:`calls` and :attr:`sentences` are appended under a lock.
    """

    def __init__(
        self,
        sample_rate_hz: int = 22_050,
        *,
        frequency_hz: float = 440.0,
        amplitude: int = 8_000,
        base_ms: float = 100.0,
        ms_per_char: float = 20.0,
        fade_ms: float = 5.0,
        pause_ms: float = 0.0,
        delay_s: float = 0.0,
    ) -> None:
        self._rate = sample_rate_hz
        self.frequency_hz = frequency_hz
        self.amplitude = amplitude
        self.base_ms = base_ms
        self.ms_per_char = ms_per_char
        self.fade_ms = fade_ms
        self.pause_ms = pause_ms
        self.delay_s = delay_s
        self.calls: list[str] = []
        """Texts passed to :meth:`synthesize` or :meth:`synthesize_sentences`, oldest first."""
        self.sentences: list[str] = []
        """Sentences rendered so far, oldest first."""
        self._lock = threading.Lock()

    @property
    def sample_rate_hz(self) -> int:
        """Rate of every clip returned (Hz)."""
        return self._rate

    def sentence_samples(self, sentence: str) -> int:
        """Length of the clip for one sentence, in samples (tone plus pause)."""
        return round(self._rate * (self.base_ms + self.ms_per_char * len(sentence) + self.pause_ms) / 1000)

    def synthesize(self, text: str) -> AudioClip:
        """All sentences of ``text`` back to back as one mono clip; empty when there is nothing to say."""
        with self._lock:
            self.calls.append(text)
        parts = [self._render(sentence) for sentence in split_sentences(text)]
        samples = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int16)
        return AudioClip(samples, self._rate, 1)

    def synthesize_sentences(self, text: str) -> Iterator[AudioClip]:
        """One mono clip per sentence, each rendered when the iterator is advanced."""
        with self._lock:
            self.calls.append(text)
        for sentence in split_sentences(text):
            yield AudioClip(self._render(sentence), self._rate, 1)

    def _render(self, sentence: str) -> PcmArray:
        with self._lock:
            self.sentences.append(sentence)
        if self.delay_s > 0:
            time.sleep(self.delay_s)
        n_tone = round(self._rate * (self.base_ms + self.ms_per_char * len(sentence)) / 1000)
        n_pause = round(self._rate * self.pause_ms / 1000)
        t = np.arange(n_tone, dtype=np.float64) / self._rate
        tone = self.amplitude * np.sin(2 * np.pi * self.frequency_hz * t)
        n_fade = min(round(self._rate * self.fade_ms / 1000), n_tone // 2)
        if n_fade > 0:
            ramp = 0.5 - 0.5 * np.cos(np.pi * np.arange(n_fade, dtype=np.float64) / n_fade)
            tone[:n_fade] *= ramp
            tone[n_tone - n_fade :] *= ramp[::-1]
        pcm = np.concatenate([np.rint(tone), np.zeros(n_pause)]).astype(np.int16)
        return pcm
