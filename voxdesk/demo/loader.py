"""Loads the demo bank through the same paths real data takes (catalog upsert, CSV import)."""

from __future__ import annotations

from dataclasses import dataclass

from profiles.importer import import_customers
from voxdesk.container import Container
from voxdesk.demo import load_products
from voxdesk.demo.generate import generate_customers
from voxdesk.demo.knowledge import load_demo_knowledge


@dataclass(frozen=True)
class DemoLoadResult:
    """What was loaded; ``skipped`` when customers already existed and ``force`` was off."""

    products: int
    customers: int
    holdings: int
    skipped: bool = False
    questions: int = 0
    scripts_approved: int = 0

    def describe(self) -> str:
        """One line for the console."""
        if self.skipped:
            return "demo bank not loaded: the database already has customers (use --force)"
        return (
            f"demo bank loaded: {self.products} products, {self.customers} customers, {self.holdings} holdings, "
            f"{self.questions} questions, {self.scripts_approved} approved scripts"
        )


def load_demo(container: Container, *, force: bool = False) -> DemoLoadResult:
    """Load products, the question library and scripts, and ``demo.customers`` fictional customers (seed
    ``demo.seed``); idempotent with force. The knowledge part is loaded whenever the library is empty, even when
    customers exist (databases created before the library existed)."""
    if container.profiles.count() > 0 and not force:
        if container.library.count() == 0:
            container.catalog.upsert_many(load_products())
            load_demo_knowledge(container)
        return DemoLoadResult(0, 0, 0, skipped=True)
    products = load_products()
    container.catalog.upsert_many(products)
    knowledge = load_demo_knowledge(container)
    demo = container.settings.demo
    customers_csv, holdings_csv = generate_customers(demo.customers, demo.seed)
    result = import_customers(container.profiles, customers_csv, holdings_csv, now=container.clock.now(), source="demo")
    return DemoLoadResult(len(products), result.customers, result.holdings, questions=knowledge.questions,
                          scripts_approved=knowledge.approved)  # fmt: skip
