"""Tables of the knowledge room: the bank's product catalog (产品目录).

Other rooms read products through :class:`knowledge.catalog.ProductCatalog`; this is its private layout.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import JSON, Integer, Numeric, String, Text
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
