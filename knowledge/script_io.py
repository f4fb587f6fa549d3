"""YAML import of marketing and outbound scripts (the demo bank's ``voxdesk/demo/scripts.yaml`` has this shape)::

    scripts:
      - id: mkt.wm_fi90d
        kind: marketing            # marketing | outbound | answer
        title_zh: ...
        title_en: ...
        products: [WM-FI90D]       # products the text is about (checked for disclosure and suitability)
        audience_risk: C2          # lowest risk tolerance of the audience; omit when not assessed
        text_zh: ...
        text_en: ...

Parsing validates every item and raises :class:`ImportRejectedError` naming each bad one by line; the result goes
to :meth:`knowledge.scripts.ScriptStore.draft_many`. Pure.
"""

from __future__ import annotations

from collections.abc import Callable, Collection

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from core.errors import ImportRejectedError, RowError
from knowledge.catalog import CustomerRisk
from knowledge.library_io import item_lines
from knowledge.script_models import ScriptDraft, ScriptSpec

__all__ = ["parse_scripts_yaml"]


class _Item(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    kind: str
    title_zh: str = ""
    title_en: str = ""
    products: list[str] = Field(default_factory=list)
    audience_risk: CustomerRisk | None = None
    text_zh: str = ""
    text_en: str = ""


def parse_scripts_yaml(text: str, *, known_products: Callable[[Collection[str]], set[str]]) -> list[ScriptDraft]:
    """Validate a scripts YAML file; raises :class:`ImportRejectedError` listing every bad item by line."""
    try:
        doc = yaml.safe_load(text)
        node = yaml.compose(text)
    except yaml.YAMLError as exc:
        raise ImportRejectedError("the YAML file cannot be parsed", [RowError(1, None, str(exc)[:200])]) from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("scripts"), list):
        raise ImportRejectedError("not a scripts file", [RowError(1, "scripts", "a 'scripts' list")])
    lines = item_lines(node, "scripts")
    errors: list[RowError] = []
    out: list[tuple[int, ScriptDraft]] = []
    seen: set[str] = set()
    for i, raw in enumerate(doc["scripts"]):
        line = lines[i] if i < len(lines) else 1
        try:
            item = _Item.model_validate(raw)
            spec = ScriptSpec.model_validate(
                {"script_id": item.id, "kind": item.kind, "title_zh": item.title_zh, "title_en": item.title_en}
            )
        except ValidationError as exc:
            errors += [RowError(line, ".".join(map(str, e["loc"])) or None, e["msg"]) for e in exc.errors()[:5]]
            continue
        if not item.text_zh.strip() and not item.text_en.strip():
            errors.append(RowError(line, "text_zh", "a script needs a text in at least one language"))
            continue
        if spec.script_id in seen:
            errors.append(RowError(line, "id", "duplicate script id"))
            continue
        seen.add(spec.script_id)
        out.append((line, ScriptDraft(spec, item.text_zh, item.text_en, tuple(item.products), item.audience_risk)))
    wanted = {p for _, d in out for p in d.product_ids}
    known = known_products(wanted) if wanted else set()
    errors += [RowError(n, "products", f"unknown product {p}") for n, d in out for p in d.product_ids if p not in known]
    if errors:
        raise ImportRejectedError("the scripts import was rejected", sorted(errors, key=lambda r: r.row))
    return [d for _, d in out]
