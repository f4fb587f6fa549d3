"""Tables of the knowledge room: the product catalog (产品目录), the question library (标准问) and scripts (话术).

Other rooms read them through :class:`knowledge.catalog.ProductCatalog`, :class:`knowledge.library.QuestionLibrary`
and :class:`knowledge.scripts.ScriptStore`; this is their private layout.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import JSON, ForeignKey, Integer, Numeric, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from core.clock import utcnow
from core.db import Base, UtcDateTime


class ProductRow(Base):
    """One product the bank sells or once sold (deposits, 理财, funds, cards, loans, insurance, precious metals)."""

    __tablename__ = "products"

    product_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    category: Mapped[str] = mapped_column(String(16), index=True)
    """deposit | wealth (理财) | fund | credit_card | loan | insurance | precious_metal."""
    name_zh: Mapped[str] = mapped_column(String(128))
    name_en: Mapped[str] = mapped_column(String(128))
    risk_grade: Mapped[str | None] = mapped_column(String(2))
    """R1 (lowest) … R5; empty for products outside suitability grading (credit cards, loans, most insurance)."""
    min_amount_cny: Mapped[Decimal | None] = mapped_column(Numeric(18, 2))
    """Minimum purchase (or, for loans, minimum loan) in CNY yuan."""
    term_days: Mapped[int | None] = mapped_column(Integer)
    """Term in days; empty for open-ended products."""
    expected_yield_pct: Mapped[Decimal | None] = mapped_column(Numeric(7, 3))
    """Annualised expected yield or benchmark in percent (not a promise); for loans the reference rate."""
    description_zh: Mapped[str] = mapped_column(Text, default="")
    description_en: Mapped[str] = mapped_column(Text, default="")
    min_tier: Mapped[str | None] = mapped_column(String(16))
    """mass | gold | platinum | diamond | private; empty when open to every tier."""
    min_age: Mapped[int | None] = mapped_column(Integer)
    """Youngest eligible age in whole years (inclusive)."""
    max_age: Mapped[int | None] = mapped_column(Integer)
    """Oldest eligible age in whole years (inclusive)."""
    target_groups: Mapped[list[str]] = mapped_column(JSON, default=list)
    """Customer groups the product is restricted to (payroll, pension, car_owner, …); empty means everyone."""
    status: Mapped[str] = mapped_column(String(16), default="on_sale", index=True)
    """on_sale | closed."""
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    target_segments: Mapped[list[str]] = mapped_column(JSON, default=list)
    """Marketing segments the product is aimed at (young_professional, retiree, …): who to offer it to first,
    unlike ``target_groups`` which restricts who may buy."""


class QuestionRow(Base):
    """A standard customer question (标准问) of the question library."""

    __tablename__ = "questions"

    question_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    category: Mapped[str] = mapped_column(String(16), index=True)
    skill_group: Mapped[str] = mapped_column(String(32))
    text_zh: Mapped[str] = mapped_column(String(256))
    text_en: Mapped[str] = mapped_column(String(256))
    paraphrases_zh: Mapped[list[str]] = mapped_column(JSON, default=list)
    paraphrases_en: Mapped[list[str]] = mapped_column(JSON, default=list)
    answer_script_id: Mapped[str | None] = mapped_column(String(64))
    products: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    """Question → product map: ``[{"product_id", "reason_zh", "reason_en"}]``."""
    status: Mapped[str] = mapped_column(String(16), default="active", index=True)
    """active | retired."""
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class ScriptRow(Base):
    """An answer, marketing or outbound script; its text lives in :class:`ScriptVersionRow`."""

    __tablename__ = "scripts"

    script_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), index=True)
    """answer | marketing | outbound."""
    title_zh: Mapped[str] = mapped_column(String(128), default="")
    title_en: Mapped[str] = mapped_column(String(128), default="")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class ScriptVersionRow(Base):
    """One version of a script and where it is in the review lifecycle."""

    __tablename__ = "script_versions"
    __table_args__ = (UniqueConstraint("script_id", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    script_id: Mapped[str] = mapped_column(String(64), ForeignKey("scripts.script_id", ondelete="CASCADE"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16), index=True)
    """draft | checked | approved | retired."""
    text_zh: Mapped[str] = mapped_column(Text, default="")
    text_en: Mapped[str] = mapped_column(Text, default="")
    product_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    """Products the text names or is about (checked for disclosure and suitability)."""
    audience_risk: Mapped[str | None] = mapped_column(String(2))
    """Lowest risk tolerance (C1–C5) of the customers the script may be read to; empty: not assessed."""
    findings: Mapped[list[dict[str, object]]] = mapped_column(JSON, default=list)
    author: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    checked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    approved_by: Mapped[str | None] = mapped_column(String(64))
    approved_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    override_reason: Mapped[str | None] = mapped_column(Text)
    retired_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
