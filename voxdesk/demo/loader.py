"""Loads the demo bank through the same paths real data takes (catalog upsert, CSV import)."""

from __future__ import annotations

from dataclasses import dataclass

from profiles.importer import import_customers
from voxdesk.container import Container
from voxdesk.demo import load_products
from voxdesk.demo.generate import generate_customers


@dataclass(frozen=True)
class DemoLoadResult:
    """What was loaded; ``skipped`` when customers already existed and ``force`` was off."""

    products: int
    customers: int
    holdings: int
    skipped: bool = False

    def describe(self) -> str:
        """One line for the console."""
        if self.skipped:
            return "demo bank not loaded: the database already has customers (use --force)"
        return f"demo bank loaded: {self.products} products, {self.customers} customers, {self.holdings} holdings"


def load_demo(container: Container, *, force: bool = False) -> DemoLoadResult:
    """Load products and ``demo.customers`` fictional customers (seed ``demo.seed``); idempotent with force."""
    if container.profiles.count() > 0 and not force:
        return DemoLoadResult(0, 0, 0, skipped=True)
    products = load_products()
    container.catalog.upsert_many(products)
    demo = container.settings.demo
    customers_csv, holdings_csv = generate_customers(demo.customers, demo.seed)
    result = import_customers(container.profiles, customers_csv, holdings_csv, now=container.clock.now(), source="demo")
    return DemoLoadResult(len(products), result.customers, result.holdings)
