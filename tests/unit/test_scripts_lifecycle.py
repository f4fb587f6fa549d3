"""Scripts with versions and compliance review: draft → checked → approved → retired, on in-memory SQLite.

The point of these tests: only approved versions can ever be read through the retrieval API
(:class:`knowledge.scripts.ApprovedScripts`), approval needs the compliance role, a different person than the
author and a clean check or a recorded override.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine
from sqlalchemy.orm import sessionmaker
from sqlalchemy.pool import StaticPool

import knowledge.tables  # noqa: F401
import profiles.tables  # noqa: F401
from core.db import Base
from core.errors import ConflictError, InvalidInputError, NotFoundError, PermissionDeniedError
from knowledge.scripts import Reviewer, ScriptDraft, ScriptSpec, ScriptStore
from knowledge.testing import FakeProductCatalog, sample_products

pytestmark = pytest.mark.unit

COMPLIANCE = Reviewer(user_id="u-comp", roles=("compliance",))
SUPERVISOR = Reviewer(user_id="u-sup", roles=("supervisor", "admin"))
CLEAN_ZH = "稳健增利理财为R3级产品，期限180天。理财非存款，产品有风险，投资须谨慎。"
CLEAN_EN = "Steady Plus Wealth is graded R3 with a 180-day term. Investment involves risk."


@pytest.fixture
def store() -> Iterator[ScriptStore]:
    engine = create_engine("sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False})
    Base.metadata.create_all(engine)
    try:
        yield ScriptStore(
            sessionmaker(engine, expire_on_commit=False),
            catalog=FakeProductCatalog(sample_products()),
            bank_names=("沃思德演示银行", "Voxdesk Demo Bank"),
        )
    finally:
        engine.dispose()


def _marketing(store: ScriptStore, text_zh: str = CLEAN_ZH, text_en: str = CLEAN_EN, audience: str = "C3") -> None:
    store.create(
        ScriptSpec(script_id="mkt.steady", kind="marketing", title_en="Steady Plus"),
        text_zh=text_zh,
        text_en=text_en,
        author="u-author",
        product_ids=["T-WM-R3"],
        audience_risk=audience,
    )


def _never_retrievable(store: ScriptStore, script_id: str = "mkt.steady") -> None:
    with pytest.raises(NotFoundError):
        store.approved(script_id)
    assert all(s.script_id != script_id for s in store.approved_all())


def test_draft_and_checked_versions_are_never_returned(store: ScriptStore) -> None:
    _marketing(store)
    [v1] = store.versions("mkt.steady")
    assert v1.state == "draft" and v1.findings == ()
    _never_retrievable(store)
    checked = store.submit("mkt.steady", 1)
    assert checked.state == "checked" and checked.checked_at is not None
    _never_retrievable(store)


def test_approved_version_is_returned_and_retired_one_is_not(store: ScriptStore) -> None:
    _marketing(store)
    store.submit("mkt.steady", 1)
    approved = store.approve("mkt.steady", 1, COMPLIANCE)
    assert approved.state == "approved" and approved.approved_by == "u-comp" and approved.override_reason is None
    got = store.approved("mkt.steady")
    assert (got.version, got.text_zh, got.text("en")) == (1, CLEAN_ZH, CLEAN_EN)
    assert [s.script_id for s in store.approved_all(kind="marketing")] == ["mkt.steady"]
    assert store.approved_all(kind="answer") == []
    store.retire("mkt.steady", 1)
    _never_retrievable(store)


def test_a_new_draft_does_not_replace_the_approved_text_until_it_is_approved(store: ScriptStore) -> None:
    _marketing(store)
    store.submit("mkt.steady", 1)
    store.approve("mkt.steady", 1, COMPLIANCE)
    v2 = store.revise("mkt.steady", text_zh=CLEAN_ZH + "起购金额一万元。", text_en=CLEAN_EN, author="u-author")
    assert (v2.version, v2.state, v2.product_ids, v2.audience_risk) == (2, "draft", ("T-WM-R3",), "C3")
    assert store.approved("mkt.steady").version == 1
    store.submit("mkt.steady", 2)
    assert store.approved("mkt.steady").version == 1
    store.approve("mkt.steady", 2, COMPLIANCE)
    assert store.approved("mkt.steady").version == 2
    states = {v.version: v.state for v in store.versions("mkt.steady")}
    assert states == {1: "retired", 2: "approved"}


def test_approval_needs_the_compliance_role_and_a_second_person(store: ScriptStore) -> None:
    _marketing(store)
    store.submit("mkt.steady", 1)
    with pytest.raises(PermissionDeniedError):
        store.approve("mkt.steady", 1, SUPERVISOR)  # even an admin is not a compliance officer
    with pytest.raises(PermissionDeniedError):
        store.approve("mkt.steady", 1, Reviewer(user_id="u-author", roles=("compliance",)))
    _never_retrievable(store)


def test_only_checked_versions_can_be_approved(store: ScriptStore) -> None:
    _marketing(store)
    with pytest.raises(ConflictError):
        store.approve("mkt.steady", 1, COMPLIANCE)  # still a draft
    store.submit("mkt.steady", 1)
    with pytest.raises(ConflictError):
        store.submit("mkt.steady", 1)
    store.retire("mkt.steady", 1)
    with pytest.raises(ConflictError):
        store.approve("mkt.steady", 1, COMPLIANCE)
    with pytest.raises(ConflictError):
        store.retire("mkt.steady", 1)


def test_findings_block_approval_unless_an_override_is_recorded(store: ScriptStore) -> None:
    _marketing(
        store, text_zh="稳健增利理财保本保息，赶紧购买！", text_en="Steady Plus has guaranteed returns, act now."
    )
    [v1] = store.versions("mkt.steady")
    rules = {(f.lang, f.rule_id) for f in v1.findings}
    assert {("zh", "claim.guaranteed_return"), ("zh", "claim.pressure"), ("zh", "disclosure.risk_missing")} <= rules
    assert {("en", "claim.guaranteed_return"), ("en", "claim.pressure"), ("en", "disclosure.risk_missing")} <= rules
    zh = next(f for f in v1.findings if f.lang == "zh" and f.rule_id == "claim.guaranteed_return")
    assert v1.text_zh[zh.start : zh.end] == "保本保息"
    store.submit("mkt.steady", 1)
    with pytest.raises(ConflictError):
        store.approve("mkt.steady", 1, COMPLIANCE)
    with pytest.raises(ConflictError):
        store.approve("mkt.steady", 1, COMPLIANCE, override_reason="   ")
    _never_retrievable(store)
    done = store.approve("mkt.steady", 1, COMPLIANCE, override_reason="Regulator-approved wording for a test.")
    assert done.override_reason == "Regulator-approved wording for a test." and done.findings
    assert store.approved("mkt.steady").version == 1


def test_product_above_the_audience_is_found(store: ScriptStore) -> None:
    _marketing(store, audience="C2")
    [v1] = store.versions("mkt.steady")
    hits = [f for f in v1.findings if f.rule_id == "suitability.above_audience"]
    assert {f.lang for f in hits} == {"zh", "en"}
    zh = next(f for f in hits if f.lang == "zh")
    assert v1.text_zh[zh.start : zh.end] == "稳健增利理财"


def test_outbound_scripts_must_name_the_bank(store: ScriptStore) -> None:
    spec = ScriptSpec(script_id="out.verify", kind="outbound")
    v = store.create(spec, text_zh="您好，这里是客户服务中心。", text_en="Hello, this is customer service.", author="a")
    assert {(f.lang, f.rule_id) for f in v.findings} == {
        ("zh", "outbound.bank_identification"),
        ("en", "outbound.bank_identification"),
    }
    ok = store.revise(
        "out.verify", text_zh="您好，这里是沃思德演示银行。", text_en="Hello, Voxdesk Demo Bank here.", author="a"
    )
    assert ok.findings == ()


def test_bad_input_is_refused(store: ScriptStore) -> None:
    with pytest.raises(InvalidInputError):
        store.create(ScriptSpec(script_id="x.empty", kind="answer"), text_zh=" ", text_en="", author="a")
    with pytest.raises(NotFoundError):
        store.create(
            ScriptSpec(script_id="x.p", kind="marketing"), text_zh="好", text_en="", author="a", product_ids=["NOPE"]
        )
    with pytest.raises(InvalidInputError):
        store.check_text("answer", "好", "", audience_risk="C9")
    _marketing(store)
    with pytest.raises(ConflictError):
        _marketing(store)
    with pytest.raises(NotFoundError):
        store.submit("mkt.steady", 7)
    with pytest.raises(NotFoundError):
        store.versions("nope")


def test_answer_drafts_are_idempotent_and_need_approval(store: ScriptStore) -> None:
    spec = ScriptSpec(script_id="answer.cards.lost", kind="answer")
    drafts = [ScriptDraft(spec, "请立即通过手机银行挂失。", "Report it in the mobile banking app.")]
    assert store.draft_many(drafts, author="importer") == 1
    assert store.draft_many(drafts, author="importer") == 0
    _never_retrievable(store, "answer.cards.lost")
    changed = [ScriptDraft(spec, "请立即通过手机银行或客服热线挂失。", drafts[0].text_en)]
    assert store.draft_many(changed, author="importer") == 1
    assert [v.version for v in store.versions("answer.cards.lost")] == [1, 2]
    assert store.latest_texts(["answer.cards.lost"])["answer.cards.lost"][0] == changed[0].text_zh
