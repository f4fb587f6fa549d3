"""The automatic compliance check of answer, marketing and outbound scripts (Chinese and English).

:meth:`ComplianceChecker.check` is pure and deterministic: text in, findings out, each with a rule id, the span it
points at (character offsets into the text, end exclusive) and a message. Rules:

* ``claim.guaranteed_return``, ``claim.risk_free``, ``claim.superlative``, ``claim.pressure`` — banned phrases
  (:mod:`knowledge.compliance_rules`), unless negated right before ("不保本保息", "returns are not guaranteed") or
  inside a whitelisted phrase (e.g. "最高额度" for a card's credit limit);
* ``disclosure.risk_missing`` — a script about a wealth, fund or insurance product lacks the risk disclosure;
* ``suitability.above_audience`` — a product named in the script is graded above the audience's risk tolerance
  (the same rule as :func:`knowledge.catalog.risk_suitable`);
* ``outbound.bank_identification`` — an outbound script never names the bank.

Any thread; no I/O. The script lifecycle (draft → checked → approved → retired) uses these findings: a version
with findings can be approved only with a recorded override.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from core.errors import InvalidInputError
from knowledge.catalog import CUSTOMER_RISKS, risk_suitable
from knowledge.compliance_rules import BANNED_RULES, DISCLOSURE_PHRASES, NEGATIONS_EN, NEGATIONS_ZH, BannedRule

__all__ = ["ComplianceChecker", "ComplianceFinding", "ComplianceRules", "ScriptContext", "ScriptProduct"]

ScriptKind = Literal["answer", "marketing", "outbound"]
DISCLOSED_CATEGORIES = frozenset({"wealth", "fund", "insurance"})
_CJK = re.compile(r"[\u3400-\u9fff]")
_WORD_BEFORE = re.compile(r"[A-Za-z']+")


@dataclass(frozen=True)
class ComplianceFinding:
    """One problem in a script: ``text[start:end]`` is what it points at (``0, 0`` for something missing)."""

    rule_id: str
    start: int
    end: int
    message: str
    matched: str = ""


@dataclass(frozen=True)
class ScriptProduct:
    """A product the script is about (from the catalog)."""

    product_id: str
    name: str
    category: str
    risk_grade: str | None = None


@dataclass(frozen=True)
class ScriptContext:
    """What the checker needs to know besides the text."""

    kind: ScriptKind = "answer"
    products: Sequence[ScriptProduct] = ()
    audience_risk: str | None = None
    """The lowest risk tolerance (C1–C5) of the audience the script is for; ``None``: not assessed (only products
    without a grade or graded R1 suit)."""
    bank_names: Sequence[str] = ()
    """Names by which an outbound script must identify the bank (any one of them)."""


@dataclass(frozen=True)
class ComplianceRules:
    """The lexicon in force: the defaults plus a bank's own phrases and whitelist."""

    banned: tuple[BannedRule, ...] = BANNED_RULES
    whitelist: tuple[str, ...] = ("最高额度", "最高可达", "最低还款", "最低还款额", "最低存款", "最低起存")
    """Phrases that contain a banned word but are factual terms (a credit limit, a minimum repayment)."""
    disclosures: dict[str, tuple[tuple[str, ...], ...]] = field(default_factory=lambda: dict(DISCLOSURE_PHRASES))


class ComplianceChecker:
    """Checks script texts against :class:`ComplianceRules` (see the module docstring)."""

    def __init__(self, rules: ComplianceRules | None = None) -> None:
        self.rules = rules if rules is not None else ComplianceRules()
        self._patterns = [(rule, self._pattern(rule)) for rule in self.rules.banned]

    @staticmethod
    def _pattern(rule: BannedRule) -> re.Pattern[str]:
        english = [rf"(?<![A-Za-z]){re.escape(p)}(?![A-Za-z])" for p in rule.en]
        chinese = [re.escape(p) for p in rule.zh]
        return re.compile("|".join(sorted(english + chinese, key=len, reverse=True)), re.IGNORECASE)

    def check(self, text: str, context: ScriptContext | None = None) -> list[ComplianceFinding]:
        """Every finding for ``text`` in order of position (missing-text findings first)."""
        ctx = context if context is not None else ScriptContext()
        if ctx.audience_risk is not None and ctx.audience_risk not in CUSTOMER_RISKS:
            raise InvalidInputError("audience risk must be C1-C5", value=ctx.audience_risk)
        findings = self._banned(text) + self._suitability(text, ctx)
        findings += self._disclosure(text, ctx) + self._bank_identification(text, ctx)
        return sorted(findings, key=lambda f: (f.end > 0, f.start, f.rule_id))

    # --- rules ----------------------------------------------------------------------------------------------

    def _banned(self, text: str) -> list[ComplianceFinding]:
        allowed = [(m.start(), m.end()) for w in self.rules.whitelist for m in re.finditer(re.escape(w), text)]
        out = []
        for rule, pattern in self._patterns:
            for match in pattern.finditer(text):
                start, end = match.span()
                if any(a <= start and end <= b for a, b in allowed) or _negated(text, start, match.group()):
                    continue
                out.append(ComplianceFinding(rule.rule_id, start, end, rule.message, match.group()))
        return out

    def _suitability(self, text: str, ctx: ScriptContext) -> list[ComplianceFinding]:
        out = []
        for product in ctx.products:
            if risk_suitable(ctx.audience_risk, product.risk_grade):
                continue
            where = text.lower().find(product.name.lower()) if product.name else -1
            start, end = (where, where + len(product.name)) if where >= 0 else (0, 0)
            audience = ctx.audience_risk or "not assessed"
            message = (
                f"{product.name} is graded {product.risk_grade}, above the audience's risk tolerance ({audience})."
            )
            out.append(ComplianceFinding("suitability.above_audience", start, end, message, product.name))
        return out

    def _disclosure(self, text: str, ctx: ScriptContext) -> list[ComplianceFinding]:
        needing = [p for p in ctx.products if p.category in DISCLOSED_CATEGORIES]
        if not needing:
            return []
        lowered = text.lower()  # a group's phrases are in one language, so only a text in it can hold them all
        groups = (group for by_lang in self.rules.disclosures.values() for group in by_lang)
        if any(all(phrase.lower() in lowered for phrase in group) for group in groups):
            return []
        names = ", ".join(p.name for p in needing)
        message = (
            f"Risk disclosure missing for {names} (e.g. 理财非存款、产品有风险、投资须谨慎 / investment involves risk)."
        )
        return [ComplianceFinding("disclosure.risk_missing", 0, 0, message)]

    def _bank_identification(self, text: str, ctx: ScriptContext) -> list[ComplianceFinding]:
        if ctx.kind != "outbound":
            return []
        if not ctx.bank_names:
            raise InvalidInputError("an outbound script check needs the bank's names")
        lowered = text.lower()
        if any(name.lower() in lowered for name in ctx.bank_names if name):
            return []
        message = "Outbound scripts must say which bank is calling (" + " / ".join(ctx.bank_names) + ")."
        return [ComplianceFinding("outbound.bank_identification", 0, 0, message)]


_NOT_NEGATIONS_ZH = ("非常", "不仅", "不但", "不断", "不少", "不错", "不过")
"""Words that start with a negation character but do not negate (非常 = very, 不仅 = not only, …)."""


def _negated(text: str, start: int, matched: str) -> bool:
    """Whether a negation stands right before the banned phrase at ``start`` (Chinese: within the three characters
    before it; English: among the three words before it)."""
    if _CJK.match(matched):
        window = text[max(0, start - 3) : start]
        for neg in NEGATIONS_ZH:
            at = window.rfind(neg)
            if at >= 0 and not window[at:].startswith(_NOT_NEGATIONS_ZH):
                return True
        return False
    words = [w.lower() for w in _WORD_BEFORE.findall(text[max(0, start - 40) : start])][-3:]
    return any(w in NEGATIONS_EN for w in words)
