"""Test doubles of the navigator, for fast deterministic dialog tests.

:class:`FakeCoreBanking` is an in-memory :class:`agent.navigator.banking.CoreBanking` that records its calls;
:func:`intent` / :func:`out_of_scope` build :class:`nlu.intents.IntentResult` values, and :class:`ScriptedIntents`
classifies by keyword rules, so tests drive the engine as the call runtime would; :func:`demo_questions` is a
small question library with the four self-service intents, an answer-only question and a transfer-only one.
For the call runtime: :class:`RecordingPlaySink` keeps what a session sends to the media worker, and
:class:`InlineExecutor` runs "blocking" work at once on the calling thread, so session tests are deterministic.
No I/O; one thread.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import ParamSpec, TypeVar

from agent.navigator.banking import DEMO_INSTALLMENT_RATES, InstallmentQuote, quote
from core.errors import InvalidInputError
from core.media import PlayAudio, PlayControl, PlayMessage
from knowledge.library import Question
from nlu.intents import IntentResult, IntentScore

__all__ = [
    "FakeCoreBanking",
    "InlineExecutor",
    "RecordingPlaySink",
    "ScriptedIntents",
    "demo_questions",
    "intent",
    "out_of_scope",
]

P = ParamSpec("P")
T = TypeVar("T")


@dataclass
class FakeCoreBanking:
    """One fictional customer (``customer_id``, card ending ``card_last4``, born ``birth_date``, ``balance`` CNY);
    ``calls`` lists ``(operation, args)`` in call order."""

    customer_id: str = "C-TEST-0001"
    card_last4: str = "1234"
    birth_date: date = date(1980, 5, 1)
    balance_cny: Decimal = Decimal("12345.60")
    calls: list[tuple[str, tuple[object, ...]]] = field(default_factory=list)

    def verify_identity(self, customer_id: str, card_last4: str, birth_date: date) -> bool:
        self.calls.append(("verify_identity", (customer_id, card_last4, birth_date)))
        return (customer_id, card_last4, birth_date) == (self.customer_id, self.card_last4, self.birth_date)

    def balance(self, customer_id: str) -> Decimal:
        self.calls.append(("balance", (customer_id,)))
        return self.balance_cny

    def installment_quote(self, customer_id: str, amount: Decimal, periods: int) -> InstallmentQuote:
        self.calls.append(("installment_quote", (customer_id, amount, periods)))
        if periods not in DEMO_INSTALLMENT_RATES:
            raise InvalidInputError("unsupported number of instalment periods")
        return quote(amount, periods, DEMO_INSTALLMENT_RATES[periods])

    def book_appointment(self, customer_id: str, branch_id: str, when: datetime) -> str:
        self.calls.append(("book_appointment", (customer_id, branch_id, when)))
        return "AP0001"

    def report_lost_card(self, customer_id: str, card_last4: str) -> str:
        self.calls.append(("report_lost_card", (customer_id, card_last4)))
        return "LC0001"


def intent(label: str, confidence: float = 0.95) -> IntentResult:
    """A confident (or, with a low ``confidence``, unsure) in-scope result for ``label``."""
    return IntentResult(top=(IntentScore(label, confidence),), out_of_scope=False)


def out_of_scope() -> IntentResult:
    return IntentResult(top=(IntentScore("general.nearest_branch", 0.1),), out_of_scope=True)


@dataclass(frozen=True)
class ScriptedIntents:
    """Keyword rules ``(substring, label, confidence)``; the first rule whose substring is in the text wins,
    else out of scope."""

    rules: Sequence[tuple[str, str, float]]

    def classify(self, text: str) -> IntentResult:
        for needle, label, confidence in self.rules:
            if needle.lower() in text.lower():
                return intent(label, confidence)
        return out_of_scope()


def demo_questions() -> dict[str, Question]:
    """The four self-service questions, ``cards.activate_card`` (answered by its approved script) and
    ``wealth.product_advice`` (no script, no flow: transferred to ``wealth``)."""
    rows = [
        (
            "cards.report_lost_card",
            "cards",
            "cards",
            "信用卡丢了怎么挂失",
            "How do I report a lost card?",
            None,
        ),
        ("accounts.balance_inquiry", "accounts", "retail", "怎么查询账户余额", "How can I check my balance?", None),
        ("general.branch_appointment", "general", "general", "怎么预约网点", "How do I book a branch visit?", None),
        ("cards.bill_instalment", "cards", "cards", "信用卡账单可以分期吗", "Can I pay my bill in instalments?", None),
        ("cards.activate_card", "cards", "cards", "新信用卡怎么激活", "How do I activate my card?", "ans.activate"),
        ("wealth.product_advice", "wealth", "wealth", "买什么理财好", "Which wealth product suits me?", None),
    ]
    return {
        qid: Question(question_id=qid, category=cat, skill_group=group, text_zh=zh, text_en=en, answer_script_id=s)
        for qid, cat, group, zh, en, s in rows
    }


@dataclass
class RecordingPlaySink:
    """A :class:`agent.navigator.play_client.PlaySink` that keeps every message, in order, as
    ``(media_worker, message)`` in :attr:`messages`."""

    messages: list[tuple[int, PlayMessage]] = field(default_factory=list)

    def send(self, media_worker: int, message: PlayMessage) -> None:
        self.messages.append((media_worker, message))

    def audio(self, segment: int | None = None) -> list[PlayAudio]:
        """The audio chunks sent (of one ``segment`` if given)."""
        return [m for _, m in self.messages if isinstance(m, PlayAudio) and segment in (None, m.segment)]

    def controls(self) -> list[PlayControl]:
        """The commands sent, in order."""
        return [m for _, m in self.messages if isinstance(m, PlayControl)]

    def actions(self) -> list[str]:
        """The actions of the commands sent, in order (``pause``, ``stop``, ``transfer`` …)."""
        return [c.action for c in self.controls()]

    def segments(self) -> list[int]:
        """Segment numbers in the order their first chunk was sent."""
        return list(dict.fromkeys(a.segment for a in self.audio()))

    def closed(self, segment: int) -> bool:
        """Whether the ``last`` chunk of ``segment`` was sent."""
        return any(a.last for a in self.audio(segment))

    def clear(self) -> None:
        self.messages.clear()


class InlineExecutor(Executor):
    """An executor that runs each call at once on the submitting thread (for deterministic tests only: in
    production blocking work belongs on a thread pool)."""

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        future: Future[T] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # noqa: BLE001 - handed to the awaiting caller, as a pool would
            future.set_exception(exc)
        return future
