"""Customer tiers (客户等级), value grades and risk tolerance levels: the shared vocabulary of a profile.

Pure and dependency-free. The tier follows from AUM (assets under management, CNY yuan) by
:data:`TIER_THRESHOLDS_CNY`; the grade (A best … D) ranks a customer's value contribution; the risk tolerance
C1 (conservative) … C5 (aggressive) is the outcome of the customer's suitability assessment (风险承受能力评估).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

Tier = Literal["mass", "gold", "platinum", "diamond", "private"]
"""Customer tier, lowest first: mass (大众), gold (金卡), platinum (白金), diamond (钻石), private banking (私行)."""

Grade = Literal["A", "B", "C", "D"]
"""Value-contribution grade: A is the most valuable, D the least."""

RiskLevel = Literal["C1", "C2", "C3", "C4", "C5"]
"""Assessed risk tolerance: C1 conservative (保守型) … C5 aggressive (激进型)."""

TIERS: tuple[Tier, ...] = ("mass", "gold", "platinum", "diamond", "private")
"""All tiers, lowest first."""

GRADES: tuple[Grade, ...] = ("A", "B", "C", "D")
"""All grades, best first."""

RISK_LEVELS: tuple[RiskLevel, ...] = ("C1", "C2", "C3", "C4", "C5")
"""All risk tolerance levels, most conservative first."""

TIER_THRESHOLDS_CNY: tuple[tuple[Tier, Decimal], ...] = (
    ("gold", Decimal("50000")),
    ("platinum", Decimal("500000")),
    ("diamond", Decimal("3000000")),
    ("private", Decimal("6000000")),
)
"""Lowest AUM (CNY yuan, inclusive) of each tier above ``mass``, ascending.

mass < 50,000 ≤ gold < 500,000 ≤ platinum < 3,000,000 ≤ diamond < 6,000,000 ≤ private.
"""


def tier_for_aum(aum: Decimal) -> Tier:
    """The tier for an AUM of ``aum`` CNY yuan (negative amounts count as zero)."""
    tier: Tier = "mass"
    for name, threshold in TIER_THRESHOLDS_CNY:
        if aum >= threshold:
            tier = name
    return tier


def tier_rank(tier: Tier) -> int:
    """0 for ``mass`` … 4 for ``private``, for comparisons."""
    return TIERS.index(tier)
