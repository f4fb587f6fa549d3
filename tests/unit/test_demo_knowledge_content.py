"""The demo bank's question library and scripts are valid, complete in both languages and pass the checker."""

from __future__ import annotations

from collections.abc import Collection
from importlib import resources

import pytest

from core.errors import ImportRejectedError
from knowledge.compliance import ComplianceChecker, ScriptContext, ScriptProduct
from knowledge.library_io import merge_files, parse_yaml
from knowledge.script_io import parse_scripts_yaml
from voxdesk.demo import BANK_NAME_EN, BANK_NAME_ZH, load_products

pytestmark = pytest.mark.unit
PRODUCTS = {p.product_id: p for p in load_products()}


def _known(ids: Collection[str]) -> set[str]:
    return {i for i in ids if i in PRODUCTS}


def test_demo_library_has_120_bilingual_questions_with_clean_answers() -> None:
    folder = resources.files("voxdesk.demo").joinpath("questions")
    names = sorted(f.name for f in folder.iterdir() if f.name.endswith(".yaml"))
    entries = merge_files(
        [parse_yaml(folder.joinpath(n).read_text(encoding="utf-8"), known_products=_known) for n in names], names
    )
    assert len(entries) >= 120
    assert len({e.question.category for e in entries}) == 12
    checker = ComplianceChecker()
    for e in entries:
        q = e.question
        assert len(q.paraphrases_zh) >= 5 and len(q.paraphrases_en) >= 5, q.question_id
        assert e.answer_zh and e.answer_en, q.question_id
        for text in (e.answer_zh, e.answer_en, *(p.reason_zh for p in q.products), *(p.reason_en for p in q.products)):
            assert checker.check(text, ScriptContext(kind="answer")) == [], (q.question_id, text)
    assert sum(bool(e.question.products) for e in entries) >= 20  # a real question → product map


def test_demo_scripts_pass_the_checker_with_their_products() -> None:
    text = resources.files("voxdesk.demo").joinpath("scripts.yaml").read_text(encoding="utf-8")
    scripts = parse_scripts_yaml(text, known_products=_known)
    assert {s.spec.kind for s in scripts} == {"marketing", "outbound"}
    checker = ComplianceChecker()
    for s in scripts:
        for lang, body in (("zh", s.text_zh), ("en", s.text_en)):
            products = [
                ScriptProduct(
                    p,
                    PRODUCTS[p].name_zh if lang == "zh" else PRODUCTS[p].name_en,
                    PRODUCTS[p].category,
                    PRODUCTS[p].risk_grade,
                )
                for p in s.product_ids
            ]
            ctx = ScriptContext(kind=s.spec.kind, products=products, audience_risk=s.audience_risk,
                                bank_names=(BANK_NAME_ZH, BANK_NAME_EN))  # fmt: skip
            assert checker.check(body, ctx) == [], (s.spec.script_id, lang)


def test_script_import_reports_bad_items_by_line() -> None:
    bad = """\
scripts:
  - id: mkt.ok
    kind: marketing
    text_zh: 好
  - id: Bad Id
    kind: marketing
    text_zh: 好
  - id: mkt.nope
    kind: marketing
    products: [NO-SUCH]
    text_en: hi
  - id: mkt.empty
    kind: outbound
"""
    with pytest.raises(ImportRejectedError) as info:
        parse_scripts_yaml(bad, known_products=_known)
    assert sorted({e.row for e in info.value.rows}) == [5, 8, 12]
