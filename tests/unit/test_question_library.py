"""The question library: validation, YAML/CSV round trips with row numbers in errors, all-or-nothing import."""

from __future__ import annotations

from collections.abc import Collection, Iterator

import pytest
from sqlalchemy import create_engine
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

import knowledge.tables  # noqa: F401
import profiles.tables  # noqa: F401
from core.db import Base
from core.errors import ImportRejectedError, InvalidInputError, NotFoundError
from knowledge.library import Question, QuestionLibrary
from knowledge.library_import import export_entries, import_library
from knowledge.library_io import dump_csv, dump_yaml, merge_files, parse_csv, parse_yaml
from knowledge.scripts import ScriptStore
from knowledge.testing import FakeProductCatalog, sample_products

pytestmark = pytest.mark.unit

GOOD = """\
category: cards
questions:
  - id: cards.report_lost_card
    skill_group: cards
    text_zh: 信用卡丢了怎么挂失
    text_en: How do I report a lost card?
    paraphrases:
      zh: [我的卡找不到了, 卡被偷了怎么办]
      en: [I lost my card, my card was stolen]
    answer:
      zh: 请在手机银行“卡片管理”中立即挂失。
      en: Report it at once under Card services in the mobile banking app.
    products:
      - id: T-CC-PLAT
        reason_zh: 补卡时可升级白金卡
        reason_en: Upgrade to platinum when the card is replaced
  - id: cards.activate_card
    skill_group: cards
    text_zh: 新卡怎么激活
    text_en: How do I activate my new card?
    paraphrases:
      en: [activate card]
"""


def _known(ids: Collection[str]) -> set[str]:
    catalog = FakeProductCatalog(sample_products())
    return set(catalog.get_many(ids))


@pytest.fixture
def sessions() -> Iterator[sessionmaker[Session]]:
    engine = create_engine("sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False})
    Base.metadata.create_all(engine)
    try:
        yield sessionmaker(engine, expire_on_commit=False)
    finally:
        engine.dispose()


def test_yaml_parses_and_round_trips_through_yaml_and_csv() -> None:
    entries = parse_yaml(GOOD, known_products=_known)
    assert [e.question.question_id for e in entries] == ["cards.report_lost_card", "cards.activate_card"]
    lost = entries[0]
    assert lost.question.answer_script_id == "answer.cards.report_lost_card" and lost.line == 3
    assert lost.question.examples("zh") == ["信用卡丢了怎么挂失", "我的卡找不到了", "卡被偷了怎么办"]
    assert entries[1].question.answer_script_id is None and entries[1].line == 17
    again = parse_yaml(dump_yaml(entries), known_products=_known)
    assert again == [type(e)(e.question, e.answer_zh, e.answer_en, a.line) for e, a in zip(entries, again, strict=True)]
    from_csv = parse_csv(dump_csv(entries), known_products=_known)
    assert [e.question for e in from_csv] == [e.question for e in entries]
    assert [e.line for e in from_csv] == [2, 3]


def test_every_bad_yaml_item_is_reported_with_its_line() -> None:
    bad = GOOD.replace("skill_group: cards\n    text_zh: 新卡", "skill_group: Cards!\n    text_zh: 新卡")
    bad = bad.replace("id: T-CC-PLAT", "id: NO-SUCH")
    bad += "  - id: loans.x\n    skill_group: loans\n    text_zh: 贷款\n    text_en: loan\n"
    with pytest.raises(ImportRejectedError) as info:
        parse_yaml(bad, known_products=_known)
    by_line = {(e.row, e.column) for e in info.value.rows}
    assert (17, "skill_group") in by_line  # pattern
    assert (3, "products") in by_line  # unknown product
    assert any(row == 23 for row, _ in by_line)  # loans.x under category cards: id prefix mismatch
    assert "row 3" in str(info.value)


def test_malformed_yaml_and_csv_are_refused_clearly() -> None:
    with pytest.raises(ImportRejectedError) as info:
        parse_yaml("questions: [\n  - {id: x", known_products=_known)
    assert info.value.rows[0].row >= 1
    with pytest.raises(ImportRejectedError):
        parse_yaml("- just a list", known_products=_known)
    with pytest.raises(ImportRejectedError) as info:
        parse_csv("id,category\ncards.x,cards\n", known_products=_known)
    assert {e.column for e in info.value.rows} >= {"skill_group", "text_zh"}
    with pytest.raises(ImportRejectedError):
        parse_csv("id,category,skill_group,text_zh,text_en,colour\n", known_products=_known)
    csv_text = (
        "id,category,skill_group,text_zh,text_en,product_ids,product_reasons_en\n"
        "cards.a,cards,cards,问,q,T-CC-PLAT|T-DEP-1Y,only one reason\n"
        "cards.a,cards,cards,问,q,,\n"
        "cards.b,cards,cards,问,q,,\n"
        "cards.b,cards,cards,问,q,,\n"
    )
    with pytest.raises(ImportRejectedError) as info:
        parse_csv(csv_text, known_products=_known)
    assert [(e.row, e.column) for e in info.value.rows] == [(2, "product_reasons_zh"), (5, "id")]


def test_ids_must_be_unique_across_files() -> None:
    a = parse_yaml(GOOD, known_products=_known)
    with pytest.raises(InvalidInputError):
        merge_files([a, a], ["a.yaml", "b.yaml"])


def test_question_validation() -> None:
    with pytest.raises(ValueError, match="duplicate paraphrase"):
        Question(question_id="cards.a", category="cards", skill_group="cards", text_zh="问", text_en="q",
                 paraphrases_en=("x", "x"))  # fmt: skip
    with pytest.raises(ValueError, match="category"):
        Question(question_id="loans.a", category="cards", skill_group="cards", text_zh="问", text_en="q")


def test_import_writes_questions_and_answer_drafts_all_or_nothing(sessions: sessionmaker[Session]) -> None:
    library = QuestionLibrary(sessions)
    scripts = ScriptStore(sessions, catalog=FakeProductCatalog(sample_products()), bank_names=("Bank",))
    entries = parse_yaml(GOOD, known_products=_known)
    before = library.revision
    result = import_library(sessions, library, scripts, entries, author="importer")
    assert (result.questions, result.answer_drafts, result.total) == (2, 1, 2)
    assert library.count() == 2 and library.revision != before
    rev = library.revision
    again = import_library(sessions, library, scripts, entries, author="importer")
    assert (again.questions, again.answer_drafts) == (0, 0) and library.revision == rev
    [v1] = scripts.versions("answer.cards.report_lost_card")
    assert v1.state == "draft"
    with pytest.raises(NotFoundError):
        scripts.approved("answer.cards.report_lost_card")
    exported = export_entries(library, scripts)
    assert {e.question.question_id: e.answer_en for e in exported}["cards.report_lost_card"].startswith("Report it")

    # A failure while writing the answers leaves the questions untouched too.
    clash = entries[0].question.model_copy(update={"text_en": "Changed?", "answer_script_id": "answer.cards.x"})
    from knowledge.scripts import ScriptSpec

    scripts.create(ScriptSpec(script_id="answer.cards.x", kind="marketing"), text_zh="好", text_en="", author="a")
    with pytest.raises(Exception, match="another kind"):
        import_library(sessions, library, scripts, [type(entries[0])(clash, "答", "a")], author="importer")
    assert library.get("cards.report_lost_card").text_en == "How do I report a lost card?"


def test_retire_and_list(sessions: sessionmaker[Session]) -> None:
    library = QuestionLibrary(sessions)
    library.upsert_many([e.question for e in parse_yaml(GOOD, known_products=_known)])
    retired = library.retire("cards.activate_card")
    assert retired.status == "retired"
    assert [q.question_id for q in library.list()] == ["cards.report_lost_card"]
    assert len(library.list(active_only=False)) == 2 and library.count(active_only=True) == 1
    with pytest.raises(InvalidInputError):
        library.list(category="pets")
    with pytest.raises(NotFoundError):
        library.retire("cards.nope")
