"""nlu.phrases: exact and ASR-tolerant phrase matching, offsets, negation."""

from __future__ import annotations

import pytest

from nlu.phrases import Phrase, PhraseMatch, PhraseMatcher, normalize

pytestmark = pytest.mark.unit

PHRASES: list[str | Phrase] = [
    "保证收益",
    "保证本金",
    "保证回报",
    "保本",
    "投资有风险",
    "投资须谨慎",
    "理财非存款",
    "市场有风险",
    "我现在帮您下单",
    "promise you returns",
    "guaranteed returns",
    "I promise",
    "promise returns",
    "can't lose",
    "risk-free",
    "investment involves risk",
    Phrase("stupid", fuzzy=False),
]


@pytest.fixture(scope="module")
def matcher() -> PhraseMatcher:
    return PhraseMatcher(PHRASES)


def only(matches: list[PhraseMatch], phrase: str) -> PhraseMatch:
    hits = [m for m in matches if m.phrase == phrase]
    assert len(hits) == 1, matches
    return hits[0]


def test_exact_chinese_hit_with_offsets(matcher: PhraseMatcher) -> None:
    text = "您好，这个产品保证收益，请放心。"
    hit = only(matcher.find(text), "保证收益")
    assert hit.exact and hit.distance == 0
    assert (hit.start, hit.end) == (7, 11)
    assert text[hit.start : hit.end] == hit.matched == "保证收益"


def test_english_exact_on_word_boundaries_only(matcher: PhraseMatcher) -> None:
    text = "It has guaranteed returns, which is stupidity-free."
    hit = only(matcher.find(text), "guaranteed returns")
    assert text[hit.start : hit.end] == "guaranteed returns"
    assert not [m for m in matcher.find(text) if m.phrase == "stupid"]
    assert [m.phrase for m in matcher.find("That is stupid.")] == ["stupid"]


def test_fuzzy_chinese_homophone_substitution(matcher: PhraseMatcher) -> None:
    text = "这个产品保证收义的"
    hit = only(matcher.find(text), "保证收益")
    assert not hit.exact and hit.distance == 1
    assert text[hit.start : hit.end] == "保证收义"


def test_fuzzy_chinese_rejects_unlike_sounding_substitution(matcher: PhraseMatcher) -> None:
    assert matcher.find("我保证收到款项后马上处理") == []
    assert matcher.find("办理时需要保证本人到场") == []
    assert matcher.find("我保证回复您") == []


def test_margin_deposit_is_not_a_guaranteed_return(matcher: PhraseMatcher) -> None:
    assert matcher.find("请先缴纳保证金") == []
    assert matcher.find("缴纳保证金收益另算") == []  # an extra character is never tolerated


def test_fuzzy_chinese_missing_inner_character_in_long_phrase(matcher: PhraseMatcher) -> None:
    text = "好的，我现在您下单"
    hit = only(matcher.find(text), "我现在帮您下单")
    assert hit.distance == 1 and text[hit.start : hit.end] == "我现在您下单"
    assert matcher.find("保收益") == []  # shorter phrases tolerate no missing character
    assert matcher.find("除市场风险外") == []  # 市场风险 (market risk) is not 市场有风险


def test_fuzzy_english_misspelled_and_merged_words(matcher: PhraseMatcher) -> None:
    text = "You get guarantied returns."
    hit = only(matcher.find(text), "guaranteed returns")
    assert hit.distance == 1 and text[hit.start : hit.end] == "guarantied returns"
    merged = only(matcher.find("it has guaranteedreturns"), "guaranteed returns")
    assert merged.matched == "guaranteedreturns"
    assert only(matcher.find("It's riskfree!"), "risk-free").matched == "riskfree"


def test_fuzzy_english_stays_on_word_boundaries_and_keeps_short_words(matcher: PhraseMatcher) -> None:
    assert [m.phrase for m in matcher.find("I can't promise returns")] == ["promise returns"]
    assert matcher.find("hi promise") == []
    assert matcher.find("it is not a promise of returns") == []  # neither "I promise" nor "promise you returns"
    assert only(matcher.find("I promised"), "I promise").distance == 1


def test_fuzzy_match_must_keep_negations(matcher: PhraseMatcher) -> None:
    assert matcher.find("you can lose money") == []
    assert matcher.find("投资无风险") == []
    assert matcher.find("理财存款") == []  # 理财非存款 without its 非
    assert matcher.find("investment involves no risk") == []


def test_normalisation_full_width_and_traditional(matcher: PhraseMatcher) -> None:
    assert only(matcher.find("這個產品保證收益"), "保证收益").exact
    text = "Ｉ　ＰＲＯＭＩＳＥ you"
    hit = only(matcher.find(text), "I promise")
    assert hit.exact and (hit.start, hit.end) == (0, 9)
    norm = normalize("保证 ，收益 Hello,World can't")
    assert norm.text == "保证收益hello world cant"
    assert len(norm.offsets) == len(norm.text) and norm.offsets[2] == 4


def test_negation_before_a_phrase(matcher: PhraseMatcher) -> None:
    for text, phrase in [
        ("这个产品不保本", "保本"),
        ("我们不能保证收益", "保证收益"),
        ("并不是说保证回报", "保证回报"),
        ("I can't promise returns", "promise returns"),
    ]:
        assert matcher.negated(text, only(matcher.find(text), phrase)), text
    for text, phrase in [
        ("不用担心保证收益", "保证收益"),  # 不用 does not negate
        ("不，保证收益", "保证收益"),  # another clause
        ("No, I promise", "I promise"),
        ("这个产品保证收益", "保证收益"),
    ]:
        assert not matcher.negated(text, only(matcher.find(text), phrase)), text


def test_negated_english_within_three_words() -> None:
    matcher = PhraseMatcher(["guaranteed"])
    text = "returns are not guaranteed"
    assert matcher.negated(text, matcher.find(text)[0])
    far = "no, the returns on this are guaranteed"
    assert not matcher.negated(far, matcher.find(far)[0])


def test_overlaps_within_a_tag_keep_the_best_one() -> None:
    matcher = PhraseMatcher([Phrase("guaranteed return", "r"), Phrase("guaranteed returns", "r"), Phrase("returns")])
    matches = matcher.find("guaranteed returns")
    assert [(m.tag, m.phrase) for m in matches] == [("r", "guaranteed returns"), ("returns", "returns")]


def test_fuzzy_can_be_switched_off() -> None:
    assert PhraseMatcher([Phrase("保证收益", fuzzy=False)]).find("保证收义") == []
    assert PhraseMatcher(["保证收益"], fuzzy=False).find("保证收义") == []
    # without the homophone guard any single substitution counts
    assert PhraseMatcher(["保证收益"], homophones=False).find("我保证收到")[0].distance == 1


def test_tags_default_to_phrase_and_all_occurrences_are_found() -> None:
    matcher = PhraseMatcher([Phrase("保本", "rule.a")])
    matches = matcher.find("保本？对，保本。")
    assert [(m.tag, m.start) for m in matches] == [("rule.a", 0), ("rule.a", 5)]
    assert PhraseMatcher(["保本"]).phrases[0].tag == "保本"
