"""The default lexicon of the script compliance checker (:mod:`knowledge.compliance`), Chinese and English.

Each rule has an id, a message shown to the script's author and the compliance officer, and its phrases. Phrases
are matched case-insensitively; English ones on word boundaries. A bank extends or replaces them through
:class:`knowledge.compliance.ComplianceRules`. The wording follows what Chinese banking supervision forbids in sales
talk for deposits, wealth management, funds and insurance (promising principal or returns, "risk-free", absolute
superlatives, pressure to buy) and the standard risk disclosure (理财非存款、产品有风险、投资须谨慎).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["BANNED_RULES", "DISCLOSURE_PHRASES", "NEGATIONS_EN", "NEGATIONS_ZH", "BannedRule"]


@dataclass(frozen=True)
class BannedRule:
    """Phrases that a script may not say (unless negated, or inside a whitelisted phrase)."""

    rule_id: str
    message: str
    zh: tuple[str, ...]
    en: tuple[str, ...]


BANNED_RULES: tuple[BannedRule, ...] = (
    BannedRule(
        "claim.guaranteed_return",
        "Promises principal or returns; no investment product may promise them.",
        zh=(
            "保本保息",
            "保证收益",
            "保证回报",
            "保证本金",
            "稳赚",
            "包赚",
            "只赚不赔",
            "稳赢",
            "收益有保障",
            "本息无忧",
        ),
        en=(
            "guaranteed return",
            "guaranteed returns",
            "guaranteed profit",
            "guaranteed income",
            "guaranteed yield",
            "can't lose",
            "cannot lose",
            "sure profit",
            "sure-fire return",
        ),
    ),
    BannedRule(
        "claim.risk_free",
        "Calls a product risk-free; every investment carries risk.",
        zh=("零风险", "无风险", "没有风险", "毫无风险", "绝对安全"),
        en=("risk-free", "risk free", "no risk", "zero risk", "without any risk", "totally safe", "absolutely safe"),
    ),
    BannedRule(
        "claim.superlative",
        "Absolute superlative; state the figure and its basis instead (or whitelist the phrase).",
        zh=("最高", "最好", "最优", "最佳", "最低", "第一", "全网最", "史上最", "顶级"),
        en=(
            "best rate",
            "best rates",
            "highest return",
            "highest returns",
            "highest rate",
            "lowest rate",
            "best in the market",
            "number one",
            "no. 1",
            "unbeatable",
        ),
    ),
    BannedRule(
        "claim.pressure",
        "Pressures the customer to decide now; give them time and the full terms.",
        zh=(
            "最后一天",
            "错过就没有",
            "错过不再",
            "马上购买",
            "赶紧",
            "赶快",
            "名额有限",
            "仅剩",
            "立即下单",
            "今天不买",
            "机不可失",
            "手慢无",
        ),
        en=(
            "act now",
            "last chance",
            "today only",
            "limited spots",
            "hurry",
            "don't miss out",
            "only a few left",
            "buy now",
            "before it's too late",
            "now or never",
        ),
    ),
)

DISCLOSURE_PHRASES: dict[str, tuple[tuple[str, ...], ...]] = {
    "zh": (("产品有风险", "投资须谨慎"), ("投资有风险",), ("市场有风险", "投资需谨慎"), ("理财非存款",)),
    "en": (
        ("investment involves risk",),
        ("investments involve risk",),
        ("investing involves risk",),
        ("may lose", "principal"),
        ("past performance is not",),
    ),
}
"""Risk disclosure: a script about a wealth, fund or insurance product must contain every phrase of at least one
group, in its language (for mixed scripts, either)."""

NEGATIONS_ZH: tuple[str, ...] = ("不", "非", "并非", "不是", "无法", "不能", "没有", "绝不", "不会", "并不")
"""Chinese negations that, right before a banned phrase (at most two characters between), undo it: 不保本保息."""

NEGATIONS_EN: tuple[str, ...] = ("not", "no", "never", "isn't", "aren't", "cannot", "can't", "nor", "without")
"""English negations that, among the three words before a banned phrase, undo it: "returns are not guaranteed"."""
