"""Test doubles of the knowledge room, for unit tests of the rooms that read it.

:class:`FakeProductCatalog` keeps products in memory with the same read API (and ``upsert_many``) as
:class:`knowledge.catalog.ProductCatalog`; :func:`sample_products` gives a few fictional products to start from.
:class:`HashingEmbedder` stands in for the embedding models; :class:`FakeQuestionLibrary` and
:func:`sample_questions` for the question library.
"""

from __future__ import annotations

import builtins
import re
import zlib
from collections.abc import Collection, Iterable, Sequence
from datetime import UTC, datetime
from decimal import Decimal

import numpy as np

from core.errors import NotFoundError
from core.ids import ProductId
from knowledge.catalog import Product, check_category, check_unique
from knowledge.embeddings import Vectors, normalise_rows
from knowledge.library import Question, QuestionProduct, library_revision

_FIXED_TIME = datetime(2026, 1, 1, tzinfo=UTC)


class FakeProductCatalog:
    """An in-memory product catalog; not thread-safe, for tests only."""

    def __init__(self, products: Iterable[Product] = (), *, now: datetime = _FIXED_TIME) -> None:
        self._now = now
        self._products: dict[str, Product] = {}
        self.upsert_many(list(products))

    def upsert_many(self, products: Sequence[Product]) -> int:
        """Create or replace products; returns how many were created or changed (like the real catalog)."""
        check_unique(products)
        written = 0
        for p in products:
            stamped = p if p.updated_at is not None else p.model_copy(update={"updated_at": self._now})
            old = self._products.get(p.product_id)
            if old is not None and old.model_copy(update={"updated_at": None}) == p.model_copy(
                update={"updated_at": None}
            ):
                continue
            self._products[p.product_id] = stamped
            written += 1
        return written

    def get(self, product_id: str) -> Product:
        """The product with this id; raises :class:`NotFoundError`."""
        try:
            return self._products[product_id]
        except KeyError:
            raise NotFoundError("unknown product", product_id=product_id) from None

    def list(self, category: str | None = None, on_sale_only: bool = True) -> builtins.list[Product]:
        """Products ordered by id, filtered like :meth:`knowledge.catalog.ProductCatalog.list`."""
        wanted = check_category(category)
        return [
            p
            for _, p in sorted(self._products.items())
            if (wanted is None or p.category == wanted) and (p.on_sale or not on_sale_only)
        ]

    def get_many(self, product_ids: Collection[str]) -> dict[str, Product]:
        """The products among ``product_ids`` that exist, by id."""
        return {pid: self._products[pid] for pid in sorted(set(product_ids)) if pid in self._products}

    def known_ids(self, product_ids: Collection[str]) -> set[str]:
        """The ids among ``product_ids`` that exist."""
        return set(self.get_many(product_ids))

    def count(self) -> int:
        """Number of products, on sale or closed."""
        return len(self._products)


def sample_products() -> builtins.list[Product]:
    """Six fictional products covering graded, ungraded, tier-, age- and group-limited and closed cases."""
    return [
        Product(
            product_id=ProductId("T-DEP-1Y"),
            category="deposit",
            name_zh="一年期定期存款",
            name_en="1-Year Time Deposit",
            risk_grade="R1",
            min_amount_cny=Decimal("50.00"),
            term_days=365,
            expected_yield_pct=Decimal("1.45"),
            description_zh="一年期整存整取定期存款。",
            description_en="A one-year fixed-term deposit.",
        ),
        Product(
            product_id=ProductId("T-WM-R3"),
            category="wealth",
            name_zh="稳健增利理财",
            name_en="Steady Plus Wealth",
            risk_grade="R3",
            min_amount_cny=Decimal("10000.00"),
            term_days=180,
            expected_yield_pct=Decimal("3.10"),
            description_zh="固收增强型理财，不保本，理财非存款，投资须谨慎。",
            description_en="A fixed-income-plus wealth product; principal is not guaranteed.",
        ),
        Product(
            product_id=ProductId("T-FD-R5"),
            category="fund",
            name_zh="科技成长股票基金",
            name_en="Tech Growth Equity Fund",
            risk_grade="R5",
            min_amount_cny=Decimal("10.00"),
            description_zh="股票型基金，净值波动大，基金有风险，投资须谨慎。",
            description_en="An equity fund with volatile value; funds carry risk.",
        ),
        Product(
            product_id=ProductId("T-CC-PLAT"),
            category="credit_card",
            name_zh="白金信用卡",
            name_en="Platinum Credit Card",
            min_tier="platinum",
            min_age=18,
            max_age=65,
            description_zh="白金客户专属信用卡。",
            description_en="A credit card for platinum customers.",
        ),
        Product(
            product_id=ProductId("T-LN-BIZ"),
            category="loan",
            name_zh="商户经营贷",
            name_en="Merchant Business Loan",
            min_amount_cny=Decimal("50000.00"),
            term_days=1095,
            target_groups=("merchant",),
            min_age=22,
            max_age=60,
            description_zh="面向商户的经营周转贷款。",
            description_en="A working-capital loan for merchants.",
        ),
        Product(
            product_id=ProductId("T-WM-OLD"),
            category="wealth",
            name_zh="已停售理财",
            name_en="Closed Wealth Product",
            risk_grade="R2",
            min_amount_cny=Decimal("1.00"),
            status="closed",
            description_zh="已停售。",
            description_en="No longer sold.",
        ),
    ]


class HashingEmbedder:
    """A deterministic :class:`knowledge.embeddings.Embedder` for unit tests: lower-cased words (and single CJK
    characters) hashed into ``dim`` buckets, L2-normalised; texts sharing words are similar. No model, no I/O."""

    name = "hashing-test"

    def __init__(self, dim: int = 64) -> None:
        self.dim = dim

    def embed_queries(self, texts: Sequence[str]) -> Vectors:
        return self._embed(texts)

    def embed_passages(self, texts: Sequence[str]) -> Vectors:
        return self._embed(texts)

    def _embed(self, texts: Sequence[str]) -> Vectors:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for token in _tokens(text):
                digest = zlib.crc32(token.encode("utf-8"))
                out[row, digest % self.dim] += 1.0 if digest & 0x8000_0000 else -1.0
        return normalise_rows(out)


def _tokens(text: str) -> list[str]:
    return [t for t in re.findall(r"[a-z0-9']+|[\u3400-\u9fff]", text.lower()) if t]


class FakeQuestionLibrary:
    """An in-memory :class:`knowledge.library.QuestionReader` (with ``upsert_many`` and ``retire``); tests only."""

    def __init__(self, questions: Iterable[Question] = ()) -> None:
        self._questions: dict[str, Question] = {q.question_id: q for q in questions}

    @property
    def revision(self) -> str:
        return library_revision(list(self._questions.values()))

    def upsert_many(self, questions: Sequence[Question]) -> int:
        """Create or replace questions; returns how many."""
        for q in questions:
            self._questions[q.question_id] = q
        return len(questions)

    def get(self, question_id: str) -> Question:
        """The question; raises :class:`NotFoundError`."""
        try:
            return self._questions[question_id]
        except KeyError:
            raise NotFoundError("unknown question", question_id=question_id) from None

    def list(self, category: str | None = None, active_only: bool = True) -> builtins.list[Question]:
        """Questions ordered by id, filtered like the real library."""
        return [
            q
            for _, q in sorted(self._questions.items())
            if (category is None or q.category == category) and (not active_only or q.status == "active")
        ]

    def retire(self, question_id: str) -> Question:
        """Mark a question retired."""
        q = self.get(question_id).model_copy(update={"status": "retired"})
        self._questions[question_id] = q
        return q


def sample_questions() -> builtins.list[Question]:
    """Three fictional questions with paraphrases in both languages (one maps to a product)."""
    return [
        Question(
            question_id="cards.report_lost_card",
            category="cards",
            skill_group="cards",
            text_zh="信用卡丢了怎么挂失",
            text_en="How do I report a lost card?",
            paraphrases_zh=("我的卡找不到了", "卡被偷了怎么办"),
            paraphrases_en=("I lost my credit card", "my card was stolen what do I do"),
            answer_script_id="answer.cards.report_lost_card",
            products=(QuestionProduct(product_id="T-CC-PLAT", reason_en="upgrade on replacement"),),
        ),
        Question(
            question_id="deposits.time_deposit_rates",
            category="deposits",
            skill_group="retail",
            text_zh="定期存款利率是多少",
            text_en="What are your time deposit rates?",
            paraphrases_zh=("一年定期利息多少", "存定期划算吗"),
            paraphrases_en=("interest rate for a one year deposit", "how much interest on fixed deposits"),
            answer_script_id="answer.deposits.time_deposit_rates",
        ),
        Question(
            question_id="transfers.transfer_limit",
            category="transfers",
            skill_group="payments",
            text_zh="转账限额是多少",
            text_en="What is my transfer limit?",
            paraphrases_zh=("一天最多能转多少钱", "转账额度怎么提高"),
            paraphrases_en=("how much can I transfer per day", "raise my transfer limit"),
        ),
    ]
