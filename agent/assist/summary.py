"""The post-call summary of an assisted call, for the customer's profile timeline.

:class:`ExtractiveSummarizer` builds a :class:`~core.events.CallSummarized` from what the call produced (a
:class:`CallRecord`): the reason (the best in-scope intent's question title, else the customer's first substantive
utterance), the resolution (approved scripts the agent used, the agent's last substantive answer, escalations and
compliance alerts), the products named in the transcript or on used suggestion cards (in order of first mention),
and the agent's commitments (call-backs, "within N working days", SMS, mail). Every sentence taken from the call is
PII-masked with :func:`core.pii.mask_text` first. Pure, synchronous, a few ms per call.

:class:`LlmSummarizer` optionally lets a bank-configured chat model (LangChain's ``invoke(messages)`` interface,
e.g. :func:`build_chat_model`) write the human-readable text from the masked transcript, and keeps the extractive
fields; any failure falls back to the extractive summary. It blocks on the network: run it on a worker thread.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final, Protocol

from pydantic import SecretStr

from agent.assist.mood import RULE_COMPLAINT, RULE_ESCALATION
from core.errors import ModelMissingError
from core.events import CallSummarized, ComplianceAlert, FinalTranscript, IntentDetected, Lang, Suggestion
from core.ids import CallId, CustomerId, ProductId
from core.logging import get_logger
from core.pii import mask_text

__all__ = [
    "LLM_REMEDY",
    "CallRecord",
    "ChatModel",
    "ChatReply",
    "ExtractiveSummarizer",
    "LlmSummarizer",
    "build_chat_model",
    "split_sentences",
]

log = get_logger(__name__)

LLM_REMEDY: Final = "pip install langchain-openai"
_REASON_CHARS: Final = 120
_FOLLOW_UP_CHARS: Final = 120
_ANSWER_CHARS: Final = 160
_MAX_FOLLOW_UPS: Final = 5

_SENTENCE_END = re.compile(r"(?<=[。！？!?；;…])\s*|(?<=\.)\s+|\n+")
_LEAD_CLAUSE = re.compile(r"\s*([^，,、。！？!?；;…]+)[，,、。！？!?；;…\s]+")
_FILLER = re.compile(
    r"(喂|你好|您好|嗯|啊|哦|噢|呃|好的?|对的?|是的?|没有|没了|谢谢(您|你)?|再见|拜拜|行|可以|明白了?|知道了|请?稍等"
    r"|ok|okay|yes|yeah|no|hi|hello|hey|thanks|thankyou|bye|goodbye|right|sure|great|uh|um|fine|alright)+",
    re.IGNORECASE,
)
_CJK = re.compile(r"[\u3400-\u9fff]")
_CLOSING = re.compile(
    r"还有(什么|其他|别的).{0,8}(帮|需要|问题)|感谢(您的)?来电|祝您|再见|很高兴为您服务|工号|请问有什么可以"
    r"|anything else|thank you for calling|thanks for calling|have a (good|nice|great)|goodbye|my name is"
    r"|how (can|may) i help",
    re.IGNORECASE,
)
_COMMITMENT = re.compile(
    r"回电|回复您|(?<!请)(?<!请您)稍后|之后给您|[一二三四五六七八九十两几\d]+个?(工作日|自然日|小时)内|发短信|短信通知"
    r"|寄送|寄给您|跟进|为您登记|给您登记"
    r"|call you back|get back to you|within (\d+|one|two|three|four|five|seven|ten|a few|few) (business |working )?"
    r"(days?|hours?)|send you|follow up|follow-up|i'll email|i will email|we'll email|we will email|email you"
    r"|i'll text|text you",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class CallRecord:
    """Everything an assisted call produced, as the session collected it (times in call ms)."""

    call_id: CallId
    lang: Lang
    utterances: Sequence[FinalTranscript]
    """Final transcripts of both legs, in call order."""
    customer_id: CustomerId | None = None
    intents: Sequence[IntentDetected] = ()
    suggestions: Sequence[Suggestion] = ()
    used_suggestion_ids: Collection[str] = frozenset()
    """Ids of the suggestions the agent marked *used* on the panel."""
    product_names: Mapping[ProductId, tuple[str, str]] = field(default_factory=dict)
    """The catalog's product names: ``product_id → (name_zh, name_en)``."""
    alerts: Sequence[ComplianceAlert] = ()


def split_sentences(text: str) -> list[str]:
    """Split on sentence punctuation (。！？；!?; and ``. `` followed by space); stripped, empty parts dropped."""
    return [s.strip() for s in _SENTENCE_END.split(text) if s and s.strip()]


def _trim(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _is_filler(text: str) -> bool:
    return _FILLER.fullmatch(re.sub(r"[\W_]+", "", text.lower())) is not None


def _substantive(text: str) -> bool:
    """Says something beyond greetings and back-channel: at least 4 Chinese characters or 3 words."""
    if not text.strip() or _is_filler(text):
        return False
    return len(_CJK.findall(text)) >= 4 or len(re.findall(r"[A-Za-z0-9']+", text)) >= 3


def _strip_leading_fillers(text: str) -> str:
    """``"喂你好，我想问下年费"`` → ``"我想问下年费"``: leading greeting clauses go."""
    while (m := _LEAD_CLAUSE.match(text)) and _is_filler(m.group(1)) and m.end() < len(text):
        text = text[m.end() :]
    return text


class ExtractiveSummarizer:
    """Builds a :class:`~core.events.CallSummarized` from a :class:`CallRecord` (see the module docstring)."""

    def summarize(self, record: CallRecord) -> CallSummarized:
        """Summarize one finished call (any thread; pure)."""
        catalog = self._catalog(record)
        reason = self._reason(record)
        resolution = self._resolution(record)
        products = self._products(record, catalog)
        follow_ups = self._follow_ups(record)
        names = [catalog.get(p, (p, p))[0 if record.lang == "zh" else 1] or p for p in products]
        return CallSummarized(
            call_id=record.call_id,
            customer_id=record.customer_id,
            reason=reason,
            resolution=resolution,
            products=tuple(products),
            follow_ups=tuple(follow_ups),
            text=self.render(record.lang, reason, resolution, names, follow_ups),
            source="extractive",
        )

    @staticmethod
    def render(
        lang: Lang, reason: str, resolution: str, product_names: Sequence[str], follow_ups: Sequence[str]
    ) -> str:
        """The 2–4 line human-readable text (reason, resolution, then products and follow-ups when any), masked."""
        follow_ups = [f.rstrip("。.；;，, ") for f in follow_ups]
        if lang == "zh":
            lines = [f"来电原因：{reason or '未识别'}", f"处理结果：{resolution or '未记录'}"]
            if product_names:
                lines.append("涉及产品：" + "、".join(product_names))
            if follow_ups:
                lines.append("后续跟进：" + "；".join(follow_ups))
        else:
            lines = [f"Reason: {reason or 'not identified'}", f"Resolution: {resolution or 'not recorded'}"]
            if product_names:
                lines.append("Products: " + ", ".join(product_names))
            if follow_ups:
                lines.append("Follow-ups: " + "; ".join(follow_ups))
        return mask_text("\n".join(lines))

    @staticmethod
    def _catalog(record: CallRecord) -> dict[ProductId, tuple[str, str]]:
        catalog: dict[ProductId, tuple[str, str]] = {}
        for s in record.suggestions:
            for p in s.products:
                catalog.setdefault(p.product_id, (p.name_zh, p.name_en))
        catalog.update(record.product_names)
        return catalog

    @staticmethod
    def _reason(record: CallRecord) -> str:
        in_scope = [i for i in record.intents if i.question_id is not None and i.label.strip()]
        if in_scope:
            best = max(in_scope, key=lambda i: i.score)  # the first of equal scores
            return _trim(mask_text(best.label.strip()), _REASON_CHARS)
        for u in record.utterances:
            if u.leg == "customer" and _substantive(u.text):
                return _trim(mask_text(_strip_leading_fillers(u.text.strip())), _REASON_CHARS)
        return ""

    @staticmethod
    def _resolution(record: CallRecord) -> str:
        zh = record.lang == "zh"
        parts: list[str] = []
        used = [s for s in record.suggestions if s.suggestion_id and s.suggestion_id in record.used_suggestion_ids]
        titles = list(dict.fromkeys(t for s in used if (t := (s.script_title or s.question_title).strip())))
        if titles:
            shown = "、".join(f"《{t}》" for t in titles) if zh else " and ".join(f"'{t}'" for t in titles)
            parts.append(f"坐席使用了审核通过的话术{shown}" if zh else f"Agent used the approved script {shown}")
        answer = _last_answer(record.utterances)
        if answer:
            parts.append(f"坐席最后答复：“{answer}”" if zh else f"agent's last answer: “{answer}”")
        rules = {a.rule_id for a in record.alerts}
        if RULE_ESCALATION in rules:
            parts.append(
                "客户提出向监管或外部投诉，已提醒主管"
                if zh
                else "the customer threatened an outside complaint; supervisors were alerted"
            )
        elif RULE_COMPLAINT in rules:
            parts.append("客户表达了投诉" if zh else "the customer raised a complaint")
        agent_alerts = sum(1 for a in record.alerts if a.audience == "agent")
        if agent_alerts:
            parts.append(
                f"坐席话术合规提醒 {agent_alerts} 条"
                if zh
                else f"{agent_alerts} compliance alert(s) on the agent's speech"
            )
        text = ("；" if zh else "; ").join(parts)
        return text[:1].upper() + text[1:] if not zh else text

    @staticmethod
    def _products(record: CallRecord, catalog: Mapping[ProductId, tuple[str, str]]) -> list[ProductId]:
        by_name: dict[str, ProductId] = {}
        for pid, names in catalog.items():
            for name in names:
                if name.strip():
                    by_name.setdefault(name.strip().lower(), pid)
        first: dict[ProductId, tuple[float, int, int]] = {}
        if by_name:
            alternatives = sorted(by_name, key=len, reverse=True)
            pattern = re.compile(
                "|".join(rf"(?<![a-z]){re.escape(n)}(?![a-z])" if n.isascii() else re.escape(n) for n in alternatives),
                re.IGNORECASE,
            )
            for seq, u in enumerate(record.utterances):
                for m in pattern.finditer(u.text):
                    first.setdefault(by_name[m.group().lower()], (u.start_ms, seq, m.start()))
        for seq, s in enumerate(record.suggestions):
            if not s.suggestion_id or s.suggestion_id not in record.used_suggestion_ids:
                continue
            at = float(s.start_ms) if s.start_ms is not None else float("inf")
            for offset, pid in enumerate(dict.fromkeys([*s.product_ids, *(p.product_id for p in s.products)])):
                key = (at, seq, offset)
                if pid not in first or key < first[pid]:
                    first[pid] = key
        return sorted(first, key=lambda p: first[p])

    @staticmethod
    def _follow_ups(record: CallRecord) -> list[str]:
        found: list[str] = []
        for u in record.utterances:
            if u.leg != "agent":
                continue
            for sentence in split_sentences(u.text):
                if _COMMITMENT.search(sentence):
                    item = _trim(mask_text(sentence), _FOLLOW_UP_CHARS)
                    if item not in found:
                        found.append(item)
        return found[:_MAX_FOLLOW_UPS]


def _last_answer(utterances: Sequence[FinalTranscript]) -> str:
    """The agent's last substantive sentence that is not a greeting, closing or commitment (masked, trimmed)."""
    fallback = ""
    for u in reversed(utterances):
        if u.leg != "agent":
            continue
        for sentence in reversed(split_sentences(u.text)):
            if not _substantive(sentence) or _CLOSING.search(sentence):
                continue
            if not _COMMITMENT.search(sentence):
                return _trim(mask_text(sentence), _ANSWER_CHARS)
            fallback = fallback or _trim(mask_text(sentence), _ANSWER_CHARS)
    return fallback


# --- optional LLM drafting -----------------------------------------------------------------------------------


class ChatReply(Protocol):
    """What a chat model answers (LangChain's ``BaseMessage``): ``content`` is a string or a list of parts."""

    @property
    def content(self) -> object: ...


class ChatModel(Protocol):
    """The slice of LangChain's chat-model interface used here: ``invoke`` with ``(role, text)`` messages."""

    def invoke(self, messages: Sequence[tuple[str, str]], /) -> ChatReply: ...


_SYSTEM: Final[dict[Lang, str]] = {
    "zh": (
        "你是银行客服中心的通话小结助手。请根据通话记录，用中文写一段简短的通话小结（不超过150字）："
        "客户来电原因、处理结果、涉及的产品和需要跟进的事项。只写记录中出现的事实，不要编造，"
        "不要写出任何卡号、证件号码或电话号码。"
    ),
    "en": (
        "You write post-call summaries for a bank's contact centre. From the transcript, write a short summary in "
        "English (at most 80 words): why the customer called, how it was resolved, products discussed and any "
        "follow-ups. State only facts from the transcript; never include card, ID or phone numbers."
    ),
}


def _content_text(content: object) -> str:
    if isinstance(content, str):
        return content.strip()
    if isinstance(content, list):
        parts = [p if isinstance(p, str) else p.get("text", "") if isinstance(p, dict) else "" for p in content]
        return "".join(str(p) for p in parts).strip()
    return ""


class LlmSummarizer:
    """Lets a chat model write the summary text; reason, resolution, products and follow-ups stay extractive.

    The prompt holds only the PII-masked transcript (at most ``max_transcript_chars``, head and tail kept) and the
    extractive fields. An exception or an empty answer returns the extractive summary (with a warning log).
    Blocking (network): call it from a worker thread, never the event loop.
    """

    def __init__(
        self,
        model: ChatModel,
        fallback: ExtractiveSummarizer | None = None,
        *,
        max_transcript_chars: int = 6000,
        max_output_chars: int = 1000,
    ) -> None:
        self._model = model
        self._fallback = fallback or ExtractiveSummarizer()
        self._max_transcript = max_transcript_chars
        self._max_output = max_output_chars

    def messages(self, record: CallRecord, extractive: CallSummarized) -> list[tuple[str, str]]:
        """The ``(role, text)`` messages sent to the model (all call text masked)."""
        zh = record.lang == "zh"
        who = {"customer": "客户", "agent": "坐席", "bot": "机器人"} if zh else {}
        lines = [f"{who.get(u.leg, u.leg)}: {mask_text(' '.join(u.text.split()))}" for u in record.utterances]
        transcript = "\n".join(line for line in lines if line.split(": ", 1)[1])
        if len(transcript) > self._max_transcript:
            half = self._max_transcript // 2
            transcript = transcript[:half] + "\n…\n" + transcript[-half:]
        extracted = extractive.text
        if zh:
            human = f"通话记录：\n{transcript}\n\n已提取的要点（供参考）：\n{extracted}\n\n请写通话小结。"
        else:
            human = f"Transcript:\n{transcript}\n\nExtracted points (for reference):\n{extracted}\n\nWrite the summary."
        return [("system", _SYSTEM[record.lang]), ("human", human)]

    def summarize(self, record: CallRecord) -> CallSummarized:
        """Summarize one call with the model, falling back to the extractive summary (blocking)."""
        extractive = self._fallback.summarize(record)
        try:
            reply = self._model.invoke(self.messages(record, extractive))
            text = _content_text(reply.content)
        except Exception as exc:  # noqa: BLE001 - any failure of the optional model: the extractive summary stands
            log.warning(
                "llm summary failed; using the extractive summary", call_id=record.call_id, error=type(exc).__name__
            )
            return extractive
        if not text:
            log.warning("llm summary was empty; using the extractive summary", call_id=record.call_id)
            return extractive
        return extractive.model_copy(update={"text": mask_text(_trim_block(text, self._max_output)), "source": "llm"})


def _trim_block(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def build_chat_model(
    base_url: str, model: str, api_key: str | SecretStr, *, temperature: float = 0.0, timeout_s: float = 30.0
) -> ChatModel:
    """An OpenAI-compatible chat model (``langchain_openai.ChatOpenAI``, imported here, lazily).

    ``base_url`` is the server's ``/v1`` URL (e.g. a self-hosted vLLM); ``timeout_s`` in seconds. Raises
    :class:`core.errors.ModelMissingError` when ``langchain-openai`` is not installed.
    """
    try:
        module = importlib.import_module("langchain_openai")
    except ImportError as exc:
        raise ModelMissingError("langchain-openai is not installed.", remedy=LLM_REMEDY) from exc
    key = api_key if isinstance(api_key, SecretStr) else SecretStr(api_key)
    chat: ChatModel = module.ChatOpenAI(
        base_url=base_url, model=model, api_key=key, temperature=temperature, timeout=timeout_s
    )
    return chat
