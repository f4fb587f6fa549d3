"""The fictional demo bank "Voxdesk Demo Bank / 沃思德演示银行": its products, branches and customers.

Everything here is invented for demos and tests: the bank, its products, rates, partner companies and customers.
``products.json`` and ``branches.json`` ship inside the package and are read with :mod:`importlib.resources`;
:mod:`voxdesk.demo.generate` makes customers, :mod:`voxdesk.demo.loader` loads it all into a database.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from core.errors import InvalidInputError
from knowledge.catalog import Product

BANK_NAME_ZH = "沃思德演示银行"
BANK_NAME_EN = "Voxdesk Demo Bank"


@dataclass(frozen=True)
class Branch:
    """A branch (网点) of the demo bank; ``county`` marks county-level (县域) branches."""

    branch_id: str
    name_zh: str
    name_en: str
    city: str
    city_zh: str
    county: bool


def load_products(path: Path | str | None = None) -> list[Product]:
    """The products in ``path`` (a JSON file shaped like the bundled ``products.json``), or the bundled ones.

    Amounts are CNY yuan, terms days, yields annual percent. Blocking file read. Raises
    :class:`InvalidInputError` when the file is not valid JSON or a product is invalid.
    """
    doc = _read_json("products.json", path)
    items = doc.get("products") if isinstance(doc, dict) else None
    if not isinstance(items, list):
        raise InvalidInputError("products file has no 'products' list")
    products: list[Product] = []
    for i, item in enumerate(items):
        try:
            products.append(Product.model_validate(item))
        except ValidationError as exc:
            raise InvalidInputError("invalid product in products file", index=i, error=str(exc)) from exc
    seen: set[str] = set()
    for p in products:
        if p.product_id in seen:
            raise InvalidInputError("duplicate product id in products file", product_id=p.product_id)
        seen.add(p.product_id)
    return products


def load_branches(path: Path | str | None = None) -> list[Branch]:
    """The branches in ``path`` (shaped like the bundled ``branches.json``), or the bundled ones. Blocking."""
    doc = _read_json("branches.json", path)
    items = doc.get("branches") if isinstance(doc, dict) else None
    if not isinstance(items, list):
        raise InvalidInputError("branches file has no 'branches' list")
    branches: list[Branch] = []
    for i, item in enumerate(items):
        try:
            branches.append(
                Branch(
                    branch_id=str(item["branch_id"]),
                    name_zh=str(item["name_zh"]),
                    name_en=str(item["name_en"]),
                    city=str(item["city"]),
                    city_zh=str(item.get("city_zh", item["city"])),
                    county=bool(item.get("county", False)),
                )
            )
        except (KeyError, TypeError) as exc:
            raise InvalidInputError("invalid branch in branches file", index=i) from exc
    return branches


def _read_json(name: str, path: Path | str | None) -> Any:
    try:
        if path is None:
            text = resources.files(__name__).joinpath(name).read_text(encoding="utf-8")
        else:
            text = Path(path).read_text(encoding="utf-8")
        return json.loads(text, parse_float=Decimal)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidInputError("demo data file could not be read", file=name) from exc
