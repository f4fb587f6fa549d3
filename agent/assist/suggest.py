"""What to whisper to the agent for one customer utterance: intent → approved answer → suitable mapped products.

:class:`SuggestionEngine` is synchronous and holds no per-call state (the session de-duplicates and rate-limits).
It runs on a worker thread of the agent process: intent classification is CPU-bound (tens of ms), the library,
scripts and catalog are database reads.

Suitability is a hard filter, applied to every product before it can appear on a card (see
:func:`offerable`): the product is on sale; its risk grade is within the customer's assessed risk tolerance
(:func:`knowledge.catalog.risk_suitable`); the customer is eligible (tier, age, groups:
:func:`knowledge.catalog.eligible`); the customer consented to marketing; and the customer does not already hold
it. A caller who is not identified gets no product at all, since none of this can be checked.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Protocol

from core.clock import utcnow
from core.errors import InvalidInputError, NotFoundError
from core.events import Lang, SuggestedProduct, Suggestion
from core.ids import CallId, ProductId, QuestionId, ScriptId
from knowledge.catalog import Product, ProductReader, eligible, risk_suitable
from knowledge.library import Question, QuestionReader
from knowledge.retrieval import approved_answer
from knowledge.script_models import ApprovedScript, ApprovedScripts
from nlu.intents import IntentResult
from profiles.models import Customer

__all__ = [
    "IntentSource",
    "PreparedAnswer",
    "SuggestionConfig",
    "SuggestionEngine",
    "customer_reason",
    "offerable",
]


class IntentSource(Protocol):
    """Classifies an utterance against the question library (labels are question ids)."""

    def classify(self, text: str, k: int = 3) -> IntentResult: ...


@dataclass(frozen=True)
class SuggestionConfig:
    """Thresholds of the suggestion engine."""

    min_confidence: float = 0.45
    """Intents below this calibrated confidence make no suggestion (the agent's screen stays calm)."""
    max_products: int = 3
    """Most products on one card."""


@dataclass(frozen=True)
class PreparedAnswer:
    """Everything about one question that does not depend on the customer (cached per question by the session)."""

    question: Question
    script: ApprovedScript | None
    products: tuple[tuple[Product, str, str], ...]
    """Mapped products that exist, with the mapping's reason (zh, en), in the library's order."""


def offerable(product: Product, customer: Customer | None, *, today: date) -> bool:
    """Whether ``product`` may be suggested to ``customer`` (see the module docstring); ``False`` when unknown."""
    if customer is None or not product.on_sale:
        return False
    if not customer.has_consent("marketing_calls"):
        return False
    if any(h.product_id == product.product_id for h in customer.holdings):
        return False
    try:
        if not risk_suitable(customer.risk_tolerance, product.risk_grade):
            return False
        return eligible(product, tier=customer.tier, age=customer.age_on(today), groups=customer.groups)
    except InvalidInputError:
        return False  # a profile value the rules do not know: never offer on a guess


def customer_reason(
    question: Question,
    customer: Customer | None,
    lang: Lang,
    holdings_names: Callable[[str], str | None],
) -> str:
    """The card's reason line: "asked about X; holds Y; risk C3" (or its Chinese form)."""
    title = question.text_zh if lang == "zh" else question.text_en
    parts = [f"询问：{title}" if lang == "zh" else f"asked about: {title}"]
    if customer is None:
        parts.append("客户未识别，不推荐产品" if lang == "zh" else "caller not identified: no products")
        return "；".join(parts) if lang == "zh" else "; ".join(parts)
    held = [name for name in (holdings_names(h.product_id) for h in customer.holdings[:2]) if name]
    if held:
        parts.append(("持有：" if lang == "zh" else "holds: ") + ("、" if lang == "zh" else ", ").join(held))
    risk = customer.risk_tolerance
    if lang == "zh":
        parts.append(f"风险承受能力 {risk}" if risk else "未做风险评估")
        if not customer.has_consent("marketing_calls"):
            parts.append("未同意营销")
        return "；".join(parts)
    parts.append(f"risk {risk}" if risk else "risk not assessed")
    if not customer.has_consent("marketing_calls"):
        parts.append("no marketing consent")
    return "; ".join(parts)


class SuggestionEngine:
    """Turns one customer utterance into at most one :class:`~core.events.Suggestion` (see the module doc)."""

    def __init__(
        self,
        *,
        intents: IntentSource,
        library: QuestionReader,
        scripts: ApprovedScripts,
        catalog: ProductReader,
        config: SuggestionConfig | None = None,
        today: Callable[[], date] = lambda: utcnow().date(),
        new_id: Callable[[], str] = lambda: uuid.uuid4().hex,
    ) -> None:
        self._intents = intents
        self._library = library
        self._scripts = scripts
        self._catalog = catalog
        self.config = config or SuggestionConfig()
        self._today = today
        self._new_id = new_id

    def classify(self, text: str) -> IntentResult:
        """The intent of ``text`` (CPU-bound: tens of ms with the real classifier)."""
        return self._intents.classify(text, 3)

    def prepare(self, question_id: str) -> PreparedAnswer | None:
        """Question, approved answer and mapped products of ``question_id``; ``None`` when the question is gone."""
        try:
            question = self._library.get(question_id)
        except NotFoundError:
            return None
        products: list[tuple[Product, str, str]] = []
        for mapped in question.products:
            try:
                products.append((self._catalog.get(mapped.product_id), mapped.reason_zh, mapped.reason_en))
            except NotFoundError:
                continue
        return PreparedAnswer(question, approved_answer(question, self._scripts), tuple(products))

    def product_name(self, product_id: str, lang: Lang) -> str | None:
        """The product's name in ``lang``, ``None`` when the catalog does not know it."""
        try:
            product = self._catalog.get(product_id)
        except NotFoundError:
            return None
        return product.name_zh if lang == "zh" else product.name_en

    def build(
        self,
        call_id: CallId,
        result: IntentResult,
        prepared: PreparedAnswer | None,
        *,
        customer: Customer | None,
        lang: Lang,
        start_ms: int | None = None,
        end_ms: int | None = None,
    ) -> Suggestion | None:
        """The suggestion for an utterance already classified as ``result``; ``None`` when out of scope, unsure,
        or when the question has neither an approved answer nor a suitable product."""
        if result.label is None or not result.top or result.top[0].confidence < self.config.min_confidence:
            return None
        if prepared is None or prepared.question.question_id != result.label:
            return None
        question, script = prepared.question, prepared.script
        today = self._today()
        chosen = [(p, rz, re_) for p, rz, re_ in prepared.products if offerable(p, customer, today=today)][
            : self.config.max_products
        ]
        if script is None and not chosen:
            return None
        products = tuple(
            SuggestedProduct(
                product_id=ProductId(p.product_id),
                name_zh=p.name_zh,
                name_en=p.name_en,
                category=p.category,
                risk_grade=p.risk_grade,
                reason_zh=rz,
                reason_en=re_,
            )
            for p, rz, re_ in chosen
        )
        return Suggestion(
            call_id=call_id,
            suggestion_id=self._new_id(),
            question_id=QuestionId(question.question_id),
            question_title=question.text_zh if lang == "zh" else question.text_en,
            script_id=ScriptId(script.script_id) if script else None,
            script_version=script.version if script else None,
            script_title=(script.title_zh if lang == "zh" else script.title_en) if script else "",
            script_text=script.text(lang) if script else "",
            product_ids=tuple(p.product_id for p in products),
            products=products,
            reason=customer_reason(question, customer, lang, lambda pid: self.product_name(pid, lang)),
            score=round(result.top[0].confidence, 4),
            lang=lang,
            start_ms=start_ms,
            end_ms=end_ms,
        )

    def suggest(
        self,
        call_id: CallId,
        text: str,
        *,
        customer: Customer | None,
        lang: Lang,
        start_ms: int | None = None,
        end_ms: int | None = None,
    ) -> Suggestion | None:
        """Classify, prepare and build in one go (no caching; the session caches across partials)."""
        result = self.classify(text)
        prepared = self.prepare(result.label) if result.label else None
        return self.build(call_id, result, prepared, customer=customer, lang=lang, start_ms=start_ms, end_ms=end_ms)
