"""The live compliance check of a human agent's own speech (the assist panel's alerts).

One :class:`AgentSpeechMonitor` per call. :meth:`~AgentSpeechMonitor.check` takes each final transcript of the
agent's leg and returns :class:`~core.events.ComplianceAlert` events for the rules of :mod:`agent.assist.rules`:
forbidden words, forbidden promises (unless negated: "这个产品不保本"), rude language, and ``agent.disclosure.missing``
— a sale confirmed ("我现在帮您下单") while a wealth, fund or insurance product is in the discussion (named by
either side, suggested on a card, or a wealth-specific confirmation such as "帮您申购") before any risk disclosure
was said in the call. Matching tolerates small ASR errors (:class:`nlu.phrases.PhraseMatcher`).

The same rule with the same matched phrase fires at most once per ``dedupe_ms`` of call time (the transcripts'
``start_ms``); at most one disclosure alert per utterance. Alert times are the utterance's (call ms); ``quote`` is
the matched words with a little context (at most 40 characters, PII masked). Synchronous, single-threaded per call,
no I/O after construction; deterministic except for alert ids (inject ``new_id``). Compile the rules once per
process with :class:`ComplianceLexicon` and share it between calls (matching is read-only).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from typing import Final

from agent.assist.rules import AssistRule, RuleSet, load_rules
from core.events import ComplianceAlert, FinalTranscript, Lang
from core.pii import mask_text
from knowledge.catalog import Product
from knowledge.compliance_rules import NEGATIONS_EN as SCRIPT_NEGATIONS_EN
from knowledge.compliance_rules import NEGATIONS_ZH as SCRIPT_NEGATIONS_ZH
from nlu.phrases import NEGATIONS_EN, NEGATIONS_ZH, Phrase, PhraseMatch, PhraseMatcher

__all__ = ["DEDUPE_WINDOW_MS", "QUOTE_CHARS", "RULE_DISCLOSURE_MISSING", "AgentSpeechMonitor", "ComplianceLexicon"]

DEDUPE_WINDOW_MS: Final = 30_000
"""Call time (ms) during which the same rule and phrase do not fire again."""
QUOTE_CHARS: Final = 40
RULE_DISCLOSURE_MISSING: Final = "agent.disclosure.missing"
_SOME_PRODUCT: Final[dict[Lang, str]] = {"zh": "理财/基金/保险产品", "en": "a wealth, fund or insurance product"}


def _new_alert_id() -> str:
    return uuid.uuid4().hex


def _quote(text: str, start: int, end: int, limit: int = QUOTE_CHARS) -> str:
    """``text[start:end]`` with context on both sides, at most ``limit`` characters, PII masked."""
    if end - start >= limit:
        return mask_text(text[start : start + limit])
    room = limit - (end - start)
    left = max(0, min(start - room // 2, len(text) - limit))
    return mask_text(text[left : left + limit].strip())


class ComplianceLexicon:
    """A :class:`~agent.assist.rules.RuleSet` compiled for matching (default: :func:`load_rules`). Immutable; build
    once per process (about 0.2 s the first time, for the pinyin table) and pass it to every monitor."""

    def __init__(self, rules: RuleSet | None = None) -> None:
        self.rules = rules if rules is not None else load_rules()
        self._by_id = {rule.id: rule for _, rule in self.rules.rules()}
        phrases = [Phrase(p, rule.id, rule.fuzzy) for _, rule in self.rules.rules() for p in rule.phrases]
        self.matcher = PhraseMatcher(
            phrases,
            negations_zh=(*NEGATIONS_ZH, *SCRIPT_NEGATIONS_ZH),
            negations_en=(*NEGATIONS_EN, *SCRIPT_NEGATIONS_EN),
        )

    def rule(self, rule_id: str) -> AssistRule:
        """The rule with this id (``KeyError`` if unknown)."""
        return self._by_id[rule_id]


class AgentSpeechMonitor:
    """Checks one call's agent speech (see the module docstring).

    ``products`` are the catalog products whose names (Chinese or English) are looked for in both legs; ``lang`` is
    the panel's language for alert messages; ``rules`` a compiled :class:`ComplianceLexicon`, a rule set, or
    ``None`` for the shipped defaults; ``dedupe_ms`` the repeat window in call ms.
    """

    def __init__(
        self,
        products: Sequence[Product] = (),
        *,
        lang: Lang = "zh",
        rules: ComplianceLexicon | RuleSet | None = None,
        dedupe_ms: int = DEDUPE_WINDOW_MS,
        new_id: Callable[[], str] = _new_alert_id,
    ) -> None:
        self._lexicon = rules if isinstance(rules, ComplianceLexicon) else ComplianceLexicon(rules)
        self._lang: Lang = lang
        self._dedupe_ms = dedupe_ms
        self._new_id = new_id
        self._products: dict[str, Product] = {p.product_id: p for p in products}
        names = [Phrase(name, p.product_id) for p in products for name in dict.fromkeys((p.name_zh, p.name_en))]
        self._names = PhraseMatcher(names, homophones=True)
        self._discussed: dict[str, None] = {}  # product ids in order of (latest) mention
        self._sale_topic = False
        self._disclosed = False
        self._last_fired: dict[tuple[str, str], int] = {}

    # --- state --------------------------------------------------------------------------------------------------

    @property
    def disclosed(self) -> bool:
        """Whether a risk disclosure was said by the agent so far in the call."""
        return self._disclosed

    @property
    def products_discussed(self) -> tuple[str, ...]:
        """Ids of the catalog products named or suggested so far, least recent first."""
        return tuple(self._discussed)

    # --- input --------------------------------------------------------------------------------------------------

    def note_products(self, product_ids: Sequence[str]) -> None:
        """Products put into the discussion by a suggestion card (ids not among ``products`` are ignored)."""
        for product_id in product_ids:
            if product_id in self._products:
                self._mention(product_id)

    def note_customer(self, final: FinalTranscript) -> None:
        """A customer final: the products and sale topics the customer names count as discussed."""
        if final.leg != "customer":
            return
        self._note_mentions(final.text)
        lexicon = self._lexicon
        for match in lexicon.matcher.find(final.text):
            if lexicon.rule(match.tag).role == "topic":
                self._sale_topic = True

    def check(self, final: FinalTranscript) -> list[ComplianceAlert]:
        """The alerts for one agent final transcript, in order of position in the text (``[]`` for other legs)."""
        if final.leg != "agent" or not final.text.strip():
            return []
        text = final.text
        self._note_mentions(text)
        lexicon = self._lexicon
        matches = lexicon.matcher.find(text)
        if any(lexicon.rule(m.tag).role == "topic" for m in matches):
            self._sale_topic = True
        alerts: list[ComplianceAlert] = []
        disclosure_raised = False
        for match in matches:
            rule = lexicon.rule(match.tag)
            if rule.negatable and lexicon.matcher.negated(text, match):
                continue
            if rule.role == "disclosure":
                self._disclosed = True
            elif rule.role in ("confirmation", "wealth_confirmation"):
                missing = lexicon.rules.disclosure_alert
                if missing is None or self._disclosed or disclosure_raised:
                    continue
                if rule.role == "confirmation" and not self._sale_in_discussion():
                    continue
                alert = self._fire(missing, match, final)
                if alert is not None:
                    disclosure_raised = True
                    alerts.append(alert)
            elif rule.role == "alert" and not self._excepted(rule):
                if any(a.rule_id == rule.id for a in alerts):
                    continue  # one alert per rule per utterance: its first phrase is the quote
                alert = self._fire(rule, match, final)
                if alert is not None:
                    alerts.append(alert)
        return alerts

    # --- internals ------------------------------------------------------------------------------------------------

    def _mention(self, product_id: str) -> None:
        self._discussed.pop(product_id, None)
        self._discussed[product_id] = None

    def _note_mentions(self, text: str) -> None:
        for match in self._names.find(text):
            self._mention(match.tag)

    def _sale_product(self) -> Product | None:
        """The most recently discussed product that needs a disclosure."""
        categories = self._lexicon.rules.disclosure_categories
        for product_id in reversed(self._discussed):
            product = self._products[product_id]
            if product.category in categories:
                return product
        return None

    def _sale_in_discussion(self) -> bool:
        return self._sale_topic or self._sale_product() is not None

    def _excepted(self, rule: AssistRule) -> bool:
        """Whether every product discussed is in the rule's ``except_categories`` (and no sale topic came up)."""
        if not rule.except_categories or not self._discussed or self._sale_topic:
            return False
        return all(self._products[p].category in rule.except_categories for p in self._discussed)

    def _fire(self, rule: AssistRule, match: PhraseMatch, final: FinalTranscript) -> ComplianceAlert | None:
        key = (rule.id, match.phrase)
        last = self._last_fired.get(key)
        if last is not None and abs(final.start_ms - last) < self._dedupe_ms:
            return None
        self._last_fired[key] = final.start_ms
        message = rule.message(self._lang)
        if "{product}" in message:
            product = self._sale_product()
            name = _SOME_PRODUCT[self._lang] if product is None else self._product_name(product)
            message = message.replace("{product}", name)
        return ComplianceAlert(
            call_id=final.call_id,
            rule_id=rule.id,
            severity=rule.severity,
            message=message,
            leg="agent",
            start_ms=final.start_ms,
            end_ms=final.end_ms,
            alert_id=self._new_id(),
            quote=_quote(final.text, match.start, match.end),
            audience="agent",
        )

    def _product_name(self, product: Product) -> str:
        return product.name_zh if self._lang == "zh" else product.name_en
