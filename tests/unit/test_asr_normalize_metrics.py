"""Text normalisation (display and scoring) and WER/CER counting."""

from __future__ import annotations

import pytest

from asr.metrics import ErrorCounts, char_errors, edit_ops, error_counts, word_errors
from asr.normalize import (
    digits_to_chinese,
    english_numbers_to_digits,
    normalize_for_display,
    normalize_for_scoring,
    to_simplified,
)

pytestmark = pytest.mark.unit


# ------------------------------------------------------------------------------------------------ display


def test_display_zh_is_simplified_with_chinese_punctuation() -> None:
    assert normalize_for_display("廣州市房地產中介協會分析.", "zh") == "广州市房地产中介协会分析。"
    assert normalize_for_display("你好, 世界! 今天 天气 好?", "zh") == "你好，世界！今天天气好？"


def test_display_unifies_width_and_spaces() -> None:
    assert normalize_for_display("ＡＴＭ　机　取款１００元", "zh") == "ATM 机取款100元"
    assert normalize_for_display("  And so,   my fellow Americans  ", "en") == "And so, my fellow Americans"
    assert normalize_for_display("3.5亿", "zh") == "3.5亿"  # a decimal point is not a full stop


def test_to_simplified_leaves_other_text() -> None:
    assert to_simplified("說話 OK 123") == "说话 OK 123"
    assert to_simplified("") == ""


# ------------------------------------------------------------------------------------------------ scoring


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("IN EIGHTEEN THIRTEEN", "in 1813"),
        ("in 1813.", "in 1813"),
        ("8. The Press Yard", "8 the press yard"),
        ("EIGHT THE PRESS YARD", "8 the press yard"),
        ("two hundred and five dollars", "205 dollars"),
        ("$205", "205 dollars"),
        ("nineteen ninety-five", "1995"),
        ("a hundred thousand", "100000"),
        ("two thousand and five", "2005"),
        ("It was the first great sorrow", "it was the first great sorrow"),
        ("I can't do it, it's 5%", "i can not do it it is 5 percent"),
        ("We're here, um, okay?", "we are here ok"),
        ("1,000 people", "1000 people"),
        ("the wizard, who had vanished", "the wizard who had vanished"),
    ],
)
def test_scoring_en(text: str, expected: str) -> None:
    assert normalize_for_scoring(text, "en") == expected


def test_english_numbers_to_digits_passes_other_words() -> None:
    assert english_numbers_to_digits(["the", "one", "and", "only"]) == ["the", "1", "and", "only"]
    assert english_numbers_to_digits(["twenty", "one", "guns"]) == ["21", "guns"]
    assert english_numbers_to_digits(["one", "two", "three"]) == ["1", "2", "3"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("廣州市房地產，中介協會分析。", "广 州 市 房 地 产 中 介 协 会 分 析"),
        ("２０１５年", "二 零 一 五 年"),
        ("我有25元", "我 有 二 十 五 元"),
        ("两个", "二 个"),
        ("利率3.5%", "利 率 百 分 之 三 点 五"),
        ("办ATM卡", "办 atm 卡"),
    ],
)
def test_scoring_zh(text: str, expected: str) -> None:
    assert normalize_for_scoring(text, "zh") == expected


def test_digits_to_chinese() -> None:
    assert digits_to_chinese("10") == "十"
    assert digits_to_chinese("105") == "一百零五"
    assert digits_to_chinese("110") == "一百一十"
    assert digits_to_chinese("0571") == "零五七一"
    assert digits_to_chinese("2026年") == "二零二六年"


# ------------------------------------------------------------------------------------------------ metrics


def test_edit_ops_counts_each_kind() -> None:
    assert edit_ops(["a", "b", "c", "d"], ["a", "x", "c", "d", "e"]) == ErrorCounts(1, 0, 1, 4)
    assert edit_ops(["a", "b", "c"], ["a", "c"]) == ErrorCounts(0, 1, 0, 3)
    assert edit_ops([], ["a"]).rate == float("inf")
    assert edit_ops([], []).rate == 0.0


def test_word_and_char_errors_known_values() -> None:
    wer = word_errors("the cat sat on the mat", "the cat sat on mat")
    assert (wer.errors, wer.ref_len) == (1, 6)
    cer = char_errors("广 州 市 房 地 产", "广 州 市 佛 地 产 啊")
    assert (cer.substitutions, cer.insertions, cer.ref_len) == (1, 1, 6)
    assert char_errors("办 atm 卡", "办 atm 卡").errors == 0  # a Latin word is one token


def test_error_counts_normalises_both_sides() -> None:
    assert error_counts("IN EIGHTEEN THIRTEEN", " in 1813.", "en").errors == 0
    zh = error_counts("广州市房地产中介协会分析", "廣州市佛地产中间协会分析。", "zh")
    assert (zh.errors, zh.ref_len) == (2, 12)


def test_corpus_rate_sums_counts() -> None:
    total = sum([ErrorCounts(1, 0, 0, 10), ErrorCounts(0, 1, 1, 30)], ErrorCounts())
    assert total == ErrorCounts(1, 1, 1, 40)
    assert total.rate == pytest.approx(3 / 40)


@pytest.mark.parametrize(
    ("text", "lang", "expected"),
    [
        ("ask what you can do for your country what you can do for your country", "en",
         "ask what you can do for your country"),
        ("What your country can do. What your country can do!", "en", "What your country can do."),
        ("信用卡挂失怎么办信用卡挂失怎么办", "zh", "信用卡挂失怎么办"),
        ("no no no no way", "en", "no no no no way"),
        ("thank you thank you", "en", "thank you thank you"),
        ("我要查余额，余额", "zh", "我要查余额，余额"),
    ],
)  # fmt: skip
def test_decoding_loops_are_collapsed(text: str, lang: str, expected: str) -> None:
    assert normalize_for_display(text, lang) == expected  # type: ignore[arg-type]
