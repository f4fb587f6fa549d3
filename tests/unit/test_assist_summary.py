"""Post-call summaries: extractive reason, resolution, products and follow-ups on scripted zh and en calls, PII
masking, and the optional LLM drafting with a scripted chat model."""

from __future__ import annotations

import sys
import types
from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest
from structlog.testing import capture_logs

from agent.assist.mood import RULE_ESCALATION
from agent.assist.summary import (
    LLM_REMEDY,
    CallRecord,
    ExtractiveSummarizer,
    LlmSummarizer,
    build_chat_model,
    split_sentences,
)
from core.errors import ModelMissingError
from core.events import ComplianceAlert, FinalTranscript, IntentDetected, Leg, SuggestedProduct, Suggestion
from core.ids import CallId, CustomerId, ProductId, QuestionId, ScriptId

pytestmark = pytest.mark.unit

CALL = CallId("call-summary")
CARD = "6222021234567890128"
PHONE = "13812345678"


def _utts(lines: Sequence[tuple[Leg, str]]) -> tuple[FinalTranscript, ...]:
    return tuple(
        FinalTranscript(call_id=CALL, leg=leg, text=text, start_ms=i * 5_000, end_ms=i * 5_000 + 4_000)
        for i, (leg, text) in enumerate(lines)
    )


def _intent(qid: str | None, label: str, score: float) -> IntentDetected:
    return IntentDetected(
        call_id=CALL, question_id=QuestionId(qid) if qid else None, label=label, score=score, text=label
    )


PLATINUM = SuggestedProduct(
    product_id=ProductId("P-PLAT"), name_zh="白金信用卡", name_en="Platinum Card", category="card"
)
GOLD = SuggestedProduct(product_id=ProductId("P-GOLD"), name_zh="金卡", name_en="Gold Card", category="card")


def _zh_record(**overrides: object) -> CallRecord:
    utterances = _utts(
        [
            ("customer", "喂，你好"),
            ("agent", "您好，很高兴为您服务，请问有什么可以帮您？"),
            ("customer", f"你好，我想问一下信用卡年费怎么收的，我卡号是{CARD}"),
            ("agent", "您好，白金信用卡年费每年600元，一年刷卡满六次可以免次年年费。"),
            ("customer", f"那有没有什么理财产品推荐，我手机{PHONE}"),
            ("agent", "可以了解一下我们的稳盈90天理财。我稍后把产品说明书发短信到您的手机上。三个工作日内会有理财经理给您回电。"),
            ("customer", "好的，谢谢"),
            ("agent", "请问还有其他可以帮您的吗？感谢您的来电，再见。"),
        ]
    )  # fmt: skip
    fields: dict[str, object] = {
        "call_id": CALL,
        "customer_id": CustomerId("C-1001"),
        "lang": "zh",
        "utterances": utterances,
        "intents": (
            _intent("q-fee", "信用卡年费收取标准", 0.82),
            _intent(None, "out_of_scope", 0.95),
            _intent("q-wmp", "理财产品推荐", 0.61),
        ),
        "suggestions": (
            Suggestion(
                call_id=CALL,
                suggestion_id="s1",
                question_title="信用卡年费收取标准",
                script_id=ScriptId("sc-fee"),
                script_title="信用卡年费说明",
                products=(PLATINUM,),
                start_ms=10_000,
            ),
            Suggestion(call_id=CALL, suggestion_id="s2", script_title="金卡介绍", products=(GOLD,), start_ms=20_000),
        ),
        "used_suggestion_ids": frozenset({"s1"}),
        "product_names": {ProductId("P-WY90"): ("稳盈90天理财", "Wenying 90-day WMP")},
    }
    fields.update(overrides)
    return CallRecord(**fields)  # type: ignore[arg-type]


def _en_record(**overrides: object) -> CallRecord:
    utterances = _utts(
        [
            ("customer", "Hi there."),
            ("agent", "Thank you for calling, my name is Anna, how can I help?"),
            ("customer", "I was charged a late fee on my platinum card even though I paid on time."),
            ("agent", "I can see the payment arrived a day late because of the bank holiday. "
                      "I have refunded the late fee."),
            ("customer", "OK. Can you also tell me about the Travel Rewards Card?"),
            ("agent", "Sure, the Travel Rewards Card has no foreign transaction fees. I'll email you the brochure "
                      "today. We will follow up within 3 business days to confirm the refund."),
            ("agent", "Is there anything else? Have a great day."),
        ]
    )  # fmt: skip
    fields: dict[str, object] = {
        "call_id": CALL,
        "lang": "en",
        "utterances": utterances,
        "intents": (
            _intent("q-late", "Late payment fee refund", 0.71),
            _intent("q-travel", "Travel card benefits", 0.64),
        ),
        "suggestions": (
            Suggestion(
                call_id=CALL, suggestion_id="s9", script_title="Late fee refund policy", products=(), start_ms=10_000
            ),
        ),
        "used_suggestion_ids": {"s9"},
        "product_names": {
            ProductId("P-PLAT"): ("白金信用卡", "Platinum Card"),
            ProductId("P-TRAVEL"): ("旅行信用卡", "Travel Rewards Card"),
            ProductId("P-CARD"): ("卡", "Card"),  # a short name inside longer ones must not match them
        },
    }
    fields.update(overrides)
    return CallRecord(**fields)  # type: ignore[arg-type]


def test_chinese_call_summary() -> None:
    summary = ExtractiveSummarizer().summarize(_zh_record())
    assert summary.call_id == CALL and summary.customer_id == "C-1001" and summary.source == "extractive"
    assert summary.reason == "信用卡年费收取标准"  # best in-scope intent; out of scope ignored
    assert summary.products == ("P-PLAT", "P-WY90")  # first mentions; the unused card's product is not there
    assert summary.follow_ups == ("我稍后把产品说明书发短信到您的手机上。", "三个工作日内会有理财经理给您回电。")
    assert "坐席使用了审核通过的话术《信用卡年费说明》" in summary.resolution
    assert "坐席最后答复：“可以了解一下我们的稳盈90天理财。”" in summary.resolution
    lines = summary.text.splitlines()
    assert lines == [
        "来电原因：信用卡年费收取标准",
        f"处理结果：{summary.resolution}",
        "涉及产品：白金信用卡、稳盈90天理财",
        "后续跟进：我稍后把产品说明书发短信到您的手机上；三个工作日内会有理财经理给您回电",
    ]


def test_english_call_summary() -> None:
    summary = ExtractiveSummarizer().summarize(_en_record())
    assert summary.reason == "Late payment fee refund"
    assert summary.products == ("P-PLAT", "P-TRAVEL")  # case-insensitive; "Card" alone never said
    assert summary.follow_ups == (
        "I'll email you the brochure today.",
        "We will follow up within 3 business days to confirm the refund.",
    )
    assert summary.resolution.startswith("Agent used the approved script 'Late fee refund policy'")
    assert "agent's last answer: “Sure, the Travel Rewards Card has no foreign transaction fees.”" in summary.resolution
    assert summary.text.splitlines()[0] == "Reason: Late payment fee refund"
    assert summary.text.splitlines()[2] == "Products: Platinum Card, Travel Rewards Card"
    assert summary.text.splitlines()[3] == (
        "Follow-ups: I'll email you the brochure today; We will follow up within 3 business days to confirm the refund"
    )


def test_reason_falls_back_to_the_first_substantive_customer_utterance_masked() -> None:
    zh = ExtractiveSummarizer().summarize(_zh_record(intents=(_intent(None, "out_of_scope", 0.9),)))
    assert zh.reason == "我想问一下信用卡年费怎么收的，我卡号是622202*********0128"
    assert CARD not in zh.text and "622202*********0128" in zh.text
    en = ExtractiveSummarizer().summarize(_en_record(intents=()))
    assert en.reason == "I was charged a late fee on my platinum card even though I paid on time."


def test_no_pii_in_any_field() -> None:
    record = _zh_record(
        intents=(),
        utterances=_utts(
            [
                ("customer", f"我的身份证号是11010519491231002X，卡号{CARD}，手机{PHONE}，我要查一下账单"),
                ("agent", f"好的，我们会在两个工作日内发短信到{PHONE}，卡号{CARD}的账单稍后寄送给您。"),
                ("agent", f"您尾号{CARD[-4:]}的卡片本月账单已经出了，金额是1200元。"),
            ]
        ),
    )
    summary = ExtractiveSummarizer().summarize(record)
    everything = "\n".join([summary.text, summary.reason, summary.resolution, *summary.follow_ups])
    for secret in (CARD, PHONE, "11010519491231002X"):
        assert secret not in everything
    assert "110*************2X" in summary.reason and "*******5678" in summary.follow_ups[0]
    assert "1200元" in summary.resolution  # amounts stay


def test_escalation_and_agent_alerts_are_in_the_resolution() -> None:
    alerts = (
        ComplianceAlert(
            call_id=CALL,
            rule_id=RULE_ESCALATION,
            severity="critical",
            message="m",
            leg="customer",
            audience="supervisor",
        ),
        ComplianceAlert(call_id=CALL, rule_id="agent.forbidden", severity="warning", message="m"),
    )
    zh = ExtractiveSummarizer().summarize(_zh_record(alerts=alerts))
    assert "客户提出向监管或外部投诉，已提醒主管" in zh.resolution and "坐席话术合规提醒 1 条" in zh.resolution
    en = ExtractiveSummarizer().summarize(_en_record(alerts=alerts, used_suggestion_ids=()))
    assert "supervisors were alerted" in en.resolution and "1 compliance alert(s)" in en.resolution
    assert "approved script" not in en.resolution


def test_follow_ups_are_capped_and_trimmed() -> None:
    long = "我们会跟进" + "这个问题的处理进度" * 20
    lines: list[tuple[Leg, str]] = [("agent", f"第{i}件事我稍后给您回电。") for i in range(7)]
    record = _zh_record(utterances=_utts([*lines, ("agent", long), ("agent", "请您稍后，我查一下。")]))
    summary = ExtractiveSummarizer().summarize(record)
    assert len(summary.follow_ups) == 5 and summary.follow_ups[0] == "第0件事我稍后给您回电。"
    long_record = _zh_record(utterances=_utts([("agent", long), ("agent", "请稍后。")]))
    (item,) = ExtractiveSummarizer().summarize(long_record).follow_ups  # "请稍后" is not a commitment
    assert len(item) == 120 and item.endswith("…")


def test_empty_call_still_has_two_lines() -> None:
    summary = ExtractiveSummarizer().summarize(CallRecord(call_id=CALL, lang="en", utterances=()))
    assert summary.text.splitlines() == ["Reason: not identified", "Resolution: not recorded"]
    assert summary.products == () and summary.follow_ups == ()


def test_split_sentences() -> None:
    assert split_sentences("好的。我查一下！稍等？ ok. Rate is 3.5% now; fine") == [
        "好的。", "我查一下！", "稍等？", "ok.", "Rate is 3.5% now;", "fine"
    ]  # fmt: skip


# --- LLM drafting ---------------------------------------------------------------------------------------------


@dataclass
class _Reply:
    content: object


@dataclass
class ScriptedChat:
    """Stands in for a LangChain chat model: answers the scripted replies in turn, records the messages."""

    replies: list[object]
    calls: list[Sequence[tuple[str, str]]] = field(default_factory=list)

    def invoke(self, messages: Sequence[tuple[str, str]], /) -> _Reply:
        self.calls.append(messages)
        reply = self.replies.pop(0)
        if isinstance(reply, Exception):
            raise reply
        return _Reply(reply)


def test_llm_writes_the_text_and_keeps_the_extractive_fields() -> None:
    chat = ScriptedChat([f"客户咨询信用卡年费，卡号{CARD}，坐席已解答并将回电。"])
    record = _zh_record(intents=())
    summary = LlmSummarizer(chat).summarize(record)
    extractive = ExtractiveSummarizer().summarize(record)
    assert summary.source == "llm"
    assert summary.text == "客户咨询信用卡年费，卡号622202*********0128，坐席已解答并将回电。"  # masked even here
    assert (summary.reason, summary.resolution, summary.products, summary.follow_ups) == (
        extractive.reason,
        extractive.resolution,
        extractive.products,
        extractive.follow_ups,
    )
    ((system_role, system), (human_role, human)) = chat.calls[0]
    assert (system_role, human_role) == ("system", "human")
    assert "中文" in system and "客户: 那有没有什么理财产品推荐" in human and extractive.text in human
    assert CARD not in human and PHONE not in human and "622202*********0128" in human


def test_llm_list_content_is_joined_in_english() -> None:
    chat = ScriptedChat([[{"type": "text", "text": "Customer disputed a late fee; "}, "refunded."]])
    summary = LlmSummarizer(chat).summarize(_en_record())
    assert summary.source == "llm" and summary.text == "Customer disputed a late fee; refunded."
    assert "English" in chat.calls[0][0][1] and "customer: I was charged" in chat.calls[0][1][1]


@pytest.mark.parametrize("reply", [RuntimeError("connection refused"), "   ", [], None])
def test_llm_failure_or_empty_answer_falls_back(reply: object) -> None:
    record = _en_record()
    with capture_logs() as logs:
        summary = LlmSummarizer(ScriptedChat([reply]), ExtractiveSummarizer()).summarize(record)
    assert summary == ExtractiveSummarizer().summarize(record).model_copy(update={"at": summary.at})
    assert summary.source == "extractive"
    (entry,) = logs
    assert entry["log_level"] == "warning" and entry["call_id"] == CALL
    assert "using the extractive summary" in entry["event"]


def test_long_transcripts_are_cut_in_the_prompt() -> None:
    utterances = _utts([("customer", "我想了解一下这张信用卡的分期手续费怎么算")] * 400)
    chat = ScriptedChat(["小结"])
    LlmSummarizer(chat, max_transcript_chars=2000).summarize(_zh_record(utterances=utterances))
    human = chat.calls[0][1][1]
    assert "\n…\n" in human and len(human) < 2000 + 1000


def test_build_chat_model_without_langchain_names_the_remedy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "langchain_openai", None)  # import fails as if not installed
    with pytest.raises(ModelMissingError) as info:
        build_chat_model("http://127.0.0.1:8000/v1", "qwen2.5-7b-instruct", "sk-local")
    assert info.value.remedy == LLM_REMEDY == "pip install langchain-openai"


def test_build_chat_model_passes_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[dict[str, object]] = []

    class ChatOpenAI:
        def __init__(self, **kwargs: object) -> None:
            made.append(kwargs)

        def invoke(self, messages: Sequence[tuple[str, str]], /) -> _Reply:
            return _Reply("ok")

    fake = types.ModuleType("langchain_openai")
    fake.ChatOpenAI = ChatOpenAI  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "langchain_openai", fake)
    model = build_chat_model("http://127.0.0.1:8000/v1", "qwen2.5-7b-instruct", "sk-local", timeout_s=5.0)
    assert isinstance(model, ChatOpenAI)
    (kwargs,) = made
    assert kwargs["base_url"] == "http://127.0.0.1:8000/v1" and kwargs["model"] == "qwen2.5-7b-instruct"
    assert kwargs["timeout"] == 5.0 and kwargs["temperature"] == 0.0
    assert kwargs["api_key"].get_secret_value() == "sk-local"  # type: ignore[attr-defined]
