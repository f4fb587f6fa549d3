"""The suggestion engine: approved answer, mapped products, and the hard suitability filter on every product
(risk, eligibility, marketing consent, holdings, on sale), with a property test over random customers and
products."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from itertools import count

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from agent.assist.suggest import SuggestionConfig, SuggestionEngine, customer_reason, offerable
from agent.testing import FakeApprovedScripts, ScriptedIntents, answer_scripts, sample_customer
from core.events import Lang, Suggestion
from core.ids import CallId, ProductId
from knowledge.catalog import (
    CATEGORIES,
    GRADED_CATEGORIES,
    RISK_GRADES,
    TIER_ORDER,
    Product,
    eligible,
    risk_suitable,
)
from knowledge.library import Question, QuestionProduct
from knowledge.testing import FakeProductCatalog, FakeQuestionLibrary, sample_products
from nlu.intents import IntentResult, IntentScore
from profiles.models import CONSENT_KINDS, Consent, Customer, Holding
from profiles.tiers import RISK_LEVELS

pytestmark = pytest.mark.unit

CALL = CallId("call-suggest")
TODAY = date(2026, 6, 1)
T0 = datetime(2026, 1, 1, tzinfo=UTC)
SAVINGS = "wealth.idle_savings"
NO_SCRIPT = "wealth.no_script"
ALL_IDS = ("T-DEP-1Y", "T-WM-R3", "T-FD-R5", "T-CC-PLAT", "T-LN-BIZ", "T-WM-OLD")
ON_SALE_IDS = ("T-DEP-1Y", "T-WM-R3", "T-FD-R5", "T-CC-PLAT", "T-LN-BIZ")
GROUPS = ("payroll", "pension", "car_owner", "county", "merchant", "new_citizen", "student")


def _question(question_id: str, product_ids: tuple[str, ...], *, script: bool = True) -> Question:
    return Question(
        question_id=question_id,
        category="wealth",
        skill_group="wealth",
        text_zh="闲钱放哪里收益高",
        text_en="Where should I put my idle savings?",
        answer_script_id=f"answer.{question_id}" if script else None,
        products=tuple(
            QuestionProduct(product_id=pid, reason_zh=f"理由 {pid}", reason_en=f"reason {pid}") for pid in product_ids
        ),
    )


def _engine(
    questions: list[Question],
    *,
    catalog: FakeProductCatalog | None = None,
    scripts: FakeApprovedScripts | None = None,
    intents: ScriptedIntents | None = None,
    max_products: int = 10,
) -> SuggestionEngine:
    ids = count(1)
    return SuggestionEngine(
        intents=intents or ScriptedIntents([("savings", SAVINGS, 0.91234), ("闲钱", SAVINGS, 0.8)]),
        library=FakeQuestionLibrary(questions),
        scripts=scripts if scripts is not None else answer_scripts(questions),
        catalog=catalog or FakeProductCatalog(sample_products()),
        config=SuggestionConfig(max_products=max_products),
        today=lambda: TODAY,
        new_id=lambda: f"s{next(ids)}",
    )


@pytest.fixture
def engine() -> SuggestionEngine:
    return _engine([_question(SAVINGS, ALL_IDS)])


def _everything_customer(**overrides: object) -> Customer:
    """A customer who may buy every on-sale sample product (C5, platinum, merchant, 40 years old, no holdings)."""
    fields: dict[str, object] = {
        "risk_tolerance": "C5",
        "tier": "platinum",
        "groups": ("merchant",),
        "birth_date": date(1986, 1, 1),
        "holdings": (),
    }
    fields.update(overrides)
    return sample_customer(**fields)


def _suggest(engine: SuggestionEngine, customer: Customer | None, *, lang: Lang = "en") -> Suggestion:
    suggestion = engine.suggest(CALL, "idle savings", customer=customer, lang=lang, start_ms=1_000, end_ms=2_500)
    assert suggestion is not None
    return suggestion


# --- what a card holds ----------------------------------------------------------------------------------------


def test_card_has_the_approved_answer_and_the_mapped_products_in_library_order(engine: SuggestionEngine) -> None:
    s = _suggest(engine, _everything_customer())

    assert s.call_id == CALL and s.suggestion_id == "s1"
    assert s.question_id == SAVINGS and s.question_title == "Where should I put my idle savings?"
    assert s.script_id == f"answer.{SAVINGS}" and s.script_version == 1
    assert s.script_title == "Where should I put my idle savings?"
    assert s.script_text == "Answer: Where should I put my idle savings?"
    assert s.product_ids == ON_SALE_IDS  # the closed one is left out, the order is the library's
    assert [p.product_id for p in s.products] == list(ON_SALE_IDS)
    wealth = s.products[1]
    assert (wealth.name_zh, wealth.name_en, wealth.category, wealth.risk_grade) == (
        "稳健增利理财",
        "Steady Plus Wealth",
        "wealth",
        "R3",
    )
    assert (wealth.reason_zh, wealth.reason_en) == ("理由 T-WM-R3", "reason T-WM-R3")
    assert s.score == 0.9123  # rounded to 4 places
    assert (s.lang, s.start_ms, s.end_ms) == ("en", 1_000, 2_500)


def test_card_in_chinese_uses_the_chinese_texts(engine: SuggestionEngine) -> None:
    s = engine.suggest(CALL, "我有点闲钱", customer=_everything_customer(), lang="zh")
    assert s is not None
    assert s.lang == "zh" and s.question_title == "闲钱放哪里收益高"
    assert s.script_title == "闲钱放哪里收益高" and s.script_text == "答：闲钱放哪里收益高"
    assert s.score == 0.8


def test_card_names_the_currently_approved_script_version() -> None:
    questions = [_question(SAVINGS, ALL_IDS)]
    scripts = answer_scripts(questions)
    scripts.add(f"answer.{SAVINGS}", text_en="New approved wording.", title_en="Savings v2")
    s = _suggest(_engine(questions, scripts=scripts), _everything_customer())
    assert (s.script_id, s.script_version) == (f"answer.{SAVINGS}", 2)
    assert (s.script_title, s.script_text) == ("Savings v2", "New approved wording.")


def test_max_products_keeps_the_first_suitable_ones() -> None:
    engine = _engine([_question(SAVINGS, ALL_IDS)], max_products=2)
    assert _suggest(engine, _everything_customer()).product_ids == ("T-DEP-1Y", "T-WM-R3")


def test_mapped_product_missing_from_the_catalog_is_skipped() -> None:
    engine = _engine([_question(SAVINGS, ("T-GONE", "T-DEP-1Y"))])
    assert _suggest(engine, _everything_customer()).product_ids == ("T-DEP-1Y",)


def test_question_without_an_approved_answer_still_offers_suitable_products() -> None:
    questions = [_question(SAVINGS, ("T-DEP-1Y",))]
    scripts = answer_scripts(questions)
    scripts.retire(f"answer.{SAVINGS}")
    s = _suggest(_engine(questions, scripts=scripts), _everything_customer())
    assert s.script_id is None and s.script_version is None and s.script_text == "" and s.script_title == ""
    assert s.product_ids == ("T-DEP-1Y",)


def test_no_answer_and_no_suitable_product_makes_no_card() -> None:
    engine = _engine([_question(SAVINGS, ("T-FD-R5",), script=False)])
    assert engine.suggest(CALL, "idle savings", customer=sample_customer(risk_tolerance="C1"), lang="en") is None
    assert engine.suggest(CALL, "idle savings", customer=None, lang="en") is None


# --- the suitability filter ---------------------------------------------------------------------------------


def _products_for(engine: SuggestionEngine, customer: Customer | None) -> tuple[str, ...]:
    return tuple(_suggest(engine, customer).product_ids)


@pytest.mark.parametrize(
    ("risk", "expected"),
    [
        (None, ("T-DEP-1Y", "T-CC-PLAT", "T-LN-BIZ")),
        ("C1", ("T-DEP-1Y", "T-CC-PLAT", "T-LN-BIZ")),
        ("C2", ("T-DEP-1Y", "T-CC-PLAT", "T-LN-BIZ")),
        ("C3", ("T-DEP-1Y", "T-WM-R3", "T-CC-PLAT", "T-LN-BIZ")),
        ("C4", ("T-DEP-1Y", "T-WM-R3", "T-CC-PLAT", "T-LN-BIZ")),
        ("C5", ON_SALE_IDS),
    ],
)
def test_risk_grade_never_above_the_customers_tolerance(
    engine: SuggestionEngine, risk: str | None, expected: tuple[str, ...]
) -> None:
    assert _products_for(engine, _everything_customer(risk_tolerance=risk)) == expected


def test_c2_customer_never_gets_an_r3_product(engine: SuggestionEngine) -> None:
    products = _suggest(engine, _everything_customer(risk_tolerance="C2")).products
    assert products and all(p.risk_grade in (None, "R1", "R2") for p in products)
    assert "T-WM-R3" not in {p.product_id for p in products}


@pytest.mark.parametrize(
    ("overrides", "missing"),
    [
        ({"tier": "gold"}, {"T-CC-PLAT"}),  # platinum card: tier below platinum
        ({"tier": "mass"}, {"T-CC-PLAT"}),
        ({"birth_date": date(2009, 6, 2)}, {"T-CC-PLAT", "T-LN-BIZ"}),  # 16 the day before their birthday
        ({"birth_date": date(1960, 1, 1)}, {"T-CC-PLAT", "T-LN-BIZ"}),  # 66: above both maximum ages
        ({"birth_date": date(1964, 1, 1)}, {"T-LN-BIZ"}),  # 62: card ok (≤ 65), loan not (≤ 60)
        ({"birth_date": None}, {"T-CC-PLAT", "T-LN-BIZ"}),  # age unknown: no age-limited product
        ({"groups": ("payroll",)}, {"T-LN-BIZ"}),  # the loan is for merchants only
        ({"groups": ()}, {"T-LN-BIZ"}),
    ],
)
def test_eligibility_by_tier_age_and_group(
    engine: SuggestionEngine, overrides: dict[str, object], missing: set[str]
) -> None:
    shown = set(_products_for(engine, _everything_customer(**overrides)))
    assert shown == set(ON_SALE_IDS) - missing


def test_age_limits_are_inclusive(engine: SuggestionEngine) -> None:
    eighteen_today = _everything_customer(birth_date=date(2008, 6, 1), groups=())
    assert "T-CC-PLAT" in _products_for(engine, eighteen_today)
    sixty_five_today = _everything_customer(birth_date=date(1961, 6, 1), groups=())
    assert "T-CC-PLAT" in _products_for(engine, sixty_five_today)


@pytest.mark.parametrize(
    "consents",
    [
        (),
        (Consent(kind="marketing_calls", granted=False, updated_at=T0),),
        (
            Consent(kind="recording", granted=True, updated_at=T0),
            Consent(kind="biometrics", granted=True, updated_at=T0),
        ),
    ],
)
def test_no_marketing_consent_no_products_but_the_answer_is_still_shown(
    engine: SuggestionEngine, consents: tuple[Consent, ...]
) -> None:
    s = _suggest(engine, _everything_customer(consents=consents))
    assert s.products == () and s.product_ids == ()
    assert s.script_id == f"answer.{SAVINGS}" and s.script_text
    assert "no marketing consent" in s.reason


def test_products_already_held_are_not_offered(engine: SuggestionEngine) -> None:
    held = (
        Holding(product_id="T-WM-R3", amount_cny=Decimal("20000")),
        Holding(product_id="T-CC-PLAT", amount_cny=Decimal("0")),
    )
    assert _products_for(engine, _everything_customer(holdings=held)) == ("T-DEP-1Y", "T-FD-R5", "T-LN-BIZ")


def test_closed_products_are_never_offered() -> None:
    engine = _engine([_question(SAVINGS, ("T-WM-OLD",))])
    assert _products_for(engine, _everything_customer()) == ()
    closed = next(p for p in sample_products() if p.product_id == "T-WM-OLD")
    assert not offerable(closed, _everything_customer(), today=TODAY)


def test_unknown_caller_gets_the_answer_and_no_products(engine: SuggestionEngine) -> None:
    s = _suggest(engine, None)
    assert s.products == () and s.script_id == f"answer.{SAVINGS}"
    assert s.reason == "asked about: Where should I put my idle savings?; caller not identified: no products"
    zh = engine.suggest(CALL, "闲钱", customer=None, lang="zh")
    assert zh is not None and zh.reason == "询问：闲钱放哪里收益高；客户未识别，不推荐产品"


def test_a_profile_value_the_rules_do_not_know_is_never_offered_on() -> None:
    deposit = sample_products()[0]
    good = _everything_customer()
    assert offerable(deposit, good, today=TODAY)
    # model_copy does not validate: simulates a tier or risk value from a newer profile vocabulary
    assert not offerable(deposit, good.model_copy(update={"tier": "black_card"}), today=TODAY)
    assert not offerable(deposit, good.model_copy(update={"risk_tolerance": "C9"}), today=TODAY)


# --- when no card is made -----------------------------------------------------------------------------------


def test_out_of_scope_makes_no_card(engine: SuggestionEngine) -> None:
    assert engine.suggest(CALL, "what is the weather like", customer=_everything_customer(), lang="en") is None


def test_low_confidence_makes_no_card() -> None:
    engine = _engine([_question(SAVINGS, ALL_IDS)], intents=ScriptedIntents([("savings", SAVINGS, 0.44)]))
    assert engine.config.min_confidence == 0.45
    assert engine.suggest(CALL, "savings", customer=_everything_customer(), lang="en") is None
    engine = _engine([_question(SAVINGS, ALL_IDS)], intents=ScriptedIntents([("savings", SAVINGS, 0.45)]))
    assert engine.suggest(CALL, "savings", customer=_everything_customer(), lang="en") is not None


def test_rejected_by_the_classifier_threshold_makes_no_card() -> None:
    intents = ScriptedIntents([("savings", SAVINGS, 0.9)], threshold=0.95)
    engine = _engine([_question(SAVINGS, ALL_IDS)], intents=intents)
    assert engine.suggest(CALL, "savings", customer=_everything_customer(), lang="en") is None


def test_question_gone_from_the_library_makes_no_card() -> None:
    engine = _engine([_question(SAVINGS, ALL_IDS)], intents=ScriptedIntents([("loan", "loans.gone_question", 0.9)]))
    assert engine.prepare("loans.gone_question") is None
    assert engine.suggest(CALL, "loan please", customer=_everything_customer(), lang="en") is None


def test_build_refuses_a_prepared_answer_of_another_question(engine: SuggestionEngine) -> None:
    other = _engine([_question("wealth.other", ALL_IDS)]).prepare("wealth.other")
    result = IntentResult((IntentScore(SAVINGS, 0.9),), out_of_scope=False)
    assert engine.build(CALL, result, other, customer=_everything_customer(), lang="en") is None
    assert engine.build(CALL, result, engine.prepare(SAVINGS), customer=_everything_customer(), lang="en")


# --- the reason line ----------------------------------------------------------------------------------------


def _names(pid: str) -> str | None:
    return {"T-DEP-1Y": "一年期定期存款", "T-WM-R3": "稳健增利理财"}.get(pid)


def test_reason_in_chinese_names_the_question_holdings_and_risk() -> None:
    q = _question(SAVINGS, ())
    customer = sample_customer(
        holdings=(
            Holding(product_id="T-DEP-1Y", amount_cny=Decimal("1")),
            Holding(product_id="T-WM-R3", amount_cny=Decimal("1")),
        ),
        risk_tolerance="C3",
    )
    assert (
        customer_reason(q, customer, "zh", _names)
        == "询问：闲钱放哪里收益高；持有：一年期定期存款、稳健增利理财；风险承受能力 C3"
    )


def test_reason_in_english_names_the_question_holdings_and_risk(engine: SuggestionEngine) -> None:
    s = _suggest(engine, sample_customer(risk_tolerance="C4"))
    assert s.reason == "asked about: Where should I put my idle savings?; holds: 1-Year Time Deposit; risk C4"


def test_reason_says_when_risk_is_not_assessed_and_consent_missing() -> None:
    q = _question(SAVINGS, ())
    customer = sample_customer(risk_tolerance=None, holdings=(), consents=())
    assert customer_reason(q, customer, "en", _names) == (
        "asked about: Where should I put my idle savings?; risk not assessed; no marketing consent"
    )
    assert customer_reason(q, customer, "zh", _names) == "询问：闲钱放哪里收益高；未做风险评估；未同意营销"


def test_reason_lists_at_most_two_holdings_and_skips_unknown_products() -> None:
    q = _question(SAVINGS, ())
    holdings = tuple(Holding(product_id=pid, amount_cny=Decimal("1")) for pid in ("T-GONE", "T-DEP-1Y", "T-WM-R3"))
    reason = customer_reason(q, sample_customer(holdings=holdings), "zh", _names)
    assert reason == "询问：闲钱放哪里收益高；持有：一年期定期存款；风险承受能力 C3"


# --- property: nothing unsuitable ever reaches a card -----------------------------------------------------------


def _sometimes(draw: st.DrawFn, strategy: st.SearchStrategy[object]) -> object:
    """A value of ``strategy`` one time in four, else ``None`` (so that restrictions combine, yet cards show)."""
    return draw(strategy) if draw(st.sampled_from((False, False, False, True))) else None


@st.composite
def _products(draw: st.DrawFn, index: int) -> Product:
    category = draw(st.sampled_from(CATEGORIES))
    if category == "deposit":
        grade: str | None = "R1"
    elif category in GRADED_CATEGORIES:
        grade = draw(st.sampled_from(RISK_GRADES))
    else:
        grade = draw(st.one_of(st.none(), st.sampled_from(RISK_GRADES)))
    low, high = sorted((draw(st.integers(0, 100)), draw(st.integers(0, 100))))
    return Product.model_validate(
        {
            "product_id": f"P-{index}",
            "category": category,
            "name_zh": f"产品{index}",
            "name_en": f"Product {index}",
            "risk_grade": grade,
            "min_tier": _sometimes(draw, st.sampled_from(TIER_ORDER)),
            "min_age": _sometimes(draw, st.just(low)),
            "max_age": _sometimes(draw, st.just(high)),
            "target_groups": _sometimes(draw, st.lists(st.sampled_from(GROUPS), min_size=1, max_size=2, unique=True))
            or (),
            "status": draw(st.sampled_from(("on_sale", "on_sale", "on_sale", "closed"))),
        }
    )


@st.composite
def _catalogs(draw: st.DrawFn) -> list[Product]:
    n = draw(st.integers(min_value=0, max_value=8))
    return [draw(_products(i)) for i in range(n)]


@st.composite
def _customers(draw: st.DrawFn, product_ids: list[str]) -> Customer:
    flags = draw(st.lists(st.tuples(st.sampled_from(CONSENT_KINDS), st.booleans()), max_size=3))
    marketing = draw(st.sampled_from(("granted", "granted", "granted", "refused", "absent")))
    if marketing != "absent":  # mostly a marketing flag, somewhere among the others
        flags.insert(draw(st.integers(0, len(flags))), ("marketing_calls", marketing == "granted"))
    consents = tuple(Consent(kind=kind, granted=granted, updated_at=T0) for kind, granted in flags)
    held = draw(st.lists(st.sampled_from([*product_ids, "X-ELSEWHERE"]), max_size=4, unique=True))
    return sample_customer(
        risk_tolerance=draw(st.one_of(st.none(), st.sampled_from(RISK_LEVELS))),
        tier=draw(st.sampled_from(TIER_ORDER)),
        birth_date=draw(st.one_of(st.none(), st.dates(min_value=date(1920, 1, 1), max_value=date(2026, 6, 1)))),
        groups=tuple(draw(st.lists(st.sampled_from(GROUPS), max_size=3, unique=True))),
        consents=consents,
        holdings=tuple(Holding(product_id=pid, amount_cny=Decimal("1000")) for pid in held),
    )


@st.composite
def _cases(draw: st.DrawFn) -> tuple[list[Product], Customer | None, bool, int, Lang]:
    products = draw(_catalogs())
    known = draw(st.sampled_from((True,) * 9 + (False,)))
    customer = None if not known else draw(_customers([p.product_id for p in products]))
    return products, customer, draw(st.booleans()), draw(st.integers(1, 5)), draw(st.sampled_from(("zh", "en")))


def _allowed(product: Product, customer: Customer) -> bool:
    """The rules of the module docstring, written out from the public rule functions."""
    return (
        product.status == "on_sale"
        and risk_suitable(customer.risk_tolerance, product.risk_grade)
        and eligible(product, tier=customer.tier, age=customer.age_on(TODAY), groups=customer.groups)
        and customer.has_consent("marketing_calls")
        and product.product_id not in {h.product_id for h in customer.holdings}
    )


@settings(max_examples=300, deadline=None)
@given(_cases())
def test_property_every_product_on_every_card_is_suitable(
    case: tuple[list[Product], Customer | None, bool, int, Lang],
) -> None:
    products, customer, has_script, max_products, lang = case
    question = _question(SAVINGS, tuple(p.product_id for p in products), script=has_script)
    engine = _engine([question], catalog=FakeProductCatalog(products), max_products=max_products)
    by_id = {p.product_id: p for p in products}

    suggestion = engine.suggest(CALL, "savings", customer=customer, lang=lang)

    expected = [] if customer is None else [p.product_id for p in products if _allowed(p, customer)]
    event(f"suitable products: {min(len(expected), 3)}")
    if suggestion is None:
        assert not has_script and not expected
        return
    for shown in suggestion.products:
        product = by_id[shown.product_id]
        assert customer is not None
        assert risk_suitable(customer.risk_tolerance, product.risk_grade)
        assert eligible(product, tier=customer.tier, age=customer.age_on(TODAY), groups=customer.groups)
        assert customer.has_consent("marketing_calls")
        assert product.on_sale
        assert all(h.product_id != product.product_id for h in customer.holdings)
        assert shown.risk_grade == product.risk_grade and shown.category == product.category
    # and nothing suitable is withheld beyond the card's limit, in the library's order
    assert list(suggestion.product_ids) == expected[:max_products]
    assert suggestion.product_ids == tuple(ProductId(p.product_id) for p in suggestion.products)
    assert (suggestion.script_id is not None) == has_script
