"""Per-utterance sentiment and dissatisfaction, Chinese and English, with the cues that explain it.

A :class:`SentimentScorer` turns one utterance into a :class:`SentimentResult`: a score from -1 (very negative) to
+1, a ``dissatisfied`` decision and the :class:`SentimentCue` spans behind it. :class:`LexiconSentiment` is the
product's scorer: a shipped sentiment model per language (VADER's lexicon for English,
:mod:`nlu.backends.vader`; SnowNLP's Bayes model for Chinese, :mod:`nlu.backends.snownlp_zh`) plus a contact-centre
cue lexicon (:data:`CUE_PHRASES`): complaint words, threats to go to the regulator, the press or court, demands
for a supervisor, anger markers, repeated-contact frustration and threats to leave. Cues move the score down by
``cue_weights[kind]`` each; the decision is ``score <= threshold`` or any decisive cue (regulator, complaint,
escalation). Parameters were chosen on the dev half of ``voxdesk/demo/sentiment_eval.csv`` (see ``docs/nlu.md``).

Blocking and CPU-light (well under a millisecond for VADER, ~1 ms for SnowNLP); safe from several threads.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal, Protocol

__all__ = [
    "CUE_PHRASES",
    "LexiconSentiment",
    "SentimentCue",
    "SentimentResult",
    "SentimentScorer",
    "find_cues",
]

CueKind = Literal["regulator", "complaint", "escalation", "anger", "repeat_contact", "churn", "grievance", "thanks"]
DECISIVE: frozenset[str] = frozenset({"regulator", "complaint", "escalation"})
_REQUEST = re.compile(
    r"^(请问|你好|我想|我要|想问|能不能帮我|麻烦)|(吗|呢)$"
    r"|^(hi|hello|can i|could you|how do i|how can i|i'd like|i need|what's|what is|when|where|is there|do you"
    r"|please)\b",
    re.IGNORECASE,
)
"""An ordinary request or question: without cues, the language model's score alone does not make it negative."""
_CJK = re.compile(r"[\u3400-\u9fff]")

_CUES: dict[CueKind, tuple[str, str]] = {
    "regulator": (
        "监管|银保监|金融监管总局|12378|12363|人民银行投诉|消协|消费者协会|12315|曝光|媒体|记者|起诉|律师|法院|打官司|上访",
        (
            "regulator|regulators|ombudsman|nfra|cbirc|the press|the media|journalist|newspaper|lawyer|solicitor|"
            "sue you|sue the bank|court|legal action|report you"
        ),
    ),
    "complaint": (
        "我要投诉|我要举报|投诉你们|投诉他|投诉她|投诉这个|给差评|差评",
        (
            "i want to complain|i want to make a complaint|file a complaint|formal complaint|lodge a complaint|"
            "complain about|i'm complaining|i am complaining"
        ),
    ),
    "escalation": (
        "找你们领导|叫你们领导|你们经理|叫经理|找主管|你们主管|找上级|换个人|你们行长",
        (
            "your supervisor|your manager|a supervisor|a manager|someone senior|speak to someone else|"
            "someone in charge|escalate"
        ),
    ),
    "anger": (
        "太差|垃圾|气死|受够|什么破|坑人|骗子|忍无可忍|离谱|恶心|搞什么|烦死|太过分|不像话|有病|欺负人|糊弄|敷衍|太慢了|没用|失望",
        (
            "ridiculous|unacceptable|outrageous|terrible|useless|fed up|sick of|disgusting|scam|rip-off|rip off|"
            "furious|angry|joke|pathetic|incompetent|awful|disappointed|frustrated|frustrating|waste of time|"
            "fobbed off|nonsense"
        ),
    ),
    "repeat_contact": (
        "第三次|第四次|第五次|好几次|多少次|又是这样|一直没|反复|每次都|还没解决|到现在还|没人回|没人管|推来推去|"
        "不是第一次|等了|等等等|又让我等|回电",
        (
            "third time|fourth time|fifth time|again and again|keep calling|still not|still hasn't|"
            "nobody called back|no one called back|every time|for weeks|several times|passed around|"
            "transferred four times|transferred three times|on hold again|every single time|it's been a month|"
            "callback twice|calls me back"
        ),
    ),
    "churn": (
        "销户|不用你们|换银行|换一家银行|全部取出来|再也不|把钱转走|转走了|后悔",
        (
            "close my account|closing my account|switch banks|another bank|take my money elsewhere|never again|"
            "move my money|regret opening|lost all trust"
        ),
    ),
    "grievance": (
        "接受不了|责任心|发到网上|态度|凭什么|为什么又|乱收费|不合理|说法不一样|没人告诉|太久了|到底|给个准话|怎么回事",
        (
            "expected a lot better|expected better|how you treat me|don't want to hear sorry|i want my money|"
            "take responsibility|nobody can tell me|always the issue|didn't even tell|didn't understand|"
            "completely different|don't appreciate|nothing but automated|talking to silence|sort it out myself|"
            "why am i paying|why do i have to|still waiting|not good enough|no notice"
        ),
    ),
    "thanks": (
        "谢谢|感谢|太好了|很专业|太方便|很方便|很耐心|这么耐心|很清楚|服务挺好|服务很好|放心|帮了我很多|搞定了|满意",
        (
            "thank you|thanks|great service|smooth|perfect|appreciate your help|very helpful|brilliant|excellent|"
            "well done|that was quick|sorted it|happy with"
        ),
    ),
}
"""Cue phrases per kind: (Chinese, English), each ``|``-separated."""

CUE_PHRASES: dict[CueKind, dict[str, tuple[str, ...]]] = {
    kind: {"zh": tuple(zh.split("|")), "en": tuple(en.split("|"))} for kind, (zh, en) in _CUES.items()
}
"""Cue phrases per kind and language (matched case-insensitively; English on word boundaries)."""

_QUESTION_ABOUT_PROCESS = re.compile(
    r"(怎么|如何|流程|渠道|哪里|电话).{0,4}(投诉|举报)|(投诉|举报).{0,4}(流程|渠道|电话|方式)"
    r"|how (do|can) i (make|file|lodge) a complaint|complaints? (process|procedure)",
    re.IGNORECASE,
)
"""Asking *how* to complain is a request, not a complaint: complaint cues in it are not decisive."""


@dataclass(frozen=True)
class SentimentCue:
    """A phrase behind the decision: ``text[start:end]``."""

    kind: CueKind
    start: int
    end: int
    text: str
    typographic: bool = False
    """The cue is the text's typography (a word in capitals, ``!!``), not its words. In a transcript the
    recogniser chose it — Whisper writes acronyms and odd words in capitals — so it says nothing of the speaker."""


@dataclass(frozen=True)
class SentimentResult:
    """Sentiment of one utterance: ``score`` in [-1, 1], ``model_score`` before cues."""

    score: float
    dissatisfied: bool
    lang: str
    model_score: float
    cues: tuple[SentimentCue, ...] = ()

    @property
    def label(self) -> Literal["negative", "neutral", "positive"]:
        """Three-way label: negative when dissatisfied, positive above 0.3, else neutral."""
        return "negative" if self.dissatisfied else "positive" if self.score >= 0.4 else "neutral"


class SentimentScorer(Protocol):
    """Scores utterances; ``lang`` ``"zh"``/``"en"`` or ``None`` to detect from the text."""

    def score(self, text: str, lang: str | None = None) -> SentimentResult: ...


def _compile(phrases: Mapping[str, tuple[str, ...]]) -> re.Pattern[str]:
    en = [rf"(?<![a-z]){re.escape(p)}(?![a-z])" for p in phrases.get("en", ())]
    zh = [re.escape(p) for p in phrases.get("zh", ())]
    return re.compile("|".join(sorted(en + zh, key=len, reverse=True)), re.IGNORECASE)


_PATTERNS: dict[CueKind, re.Pattern[str]] = {kind: _compile(p) for kind, p in CUE_PHRASES.items()}
_SHOUTING = re.compile(r"\b[A-Z]{4,}\b")
_EXCLAIM = re.compile(r"[!！]{2,}|[?？][!！]|[!！][?？]")


def find_cues(text: str) -> list[SentimentCue]:
    """Every cue in ``text``, in order of position (shouting and ``!!`` count as anger)."""
    cues = [
        SentimentCue(kind, m.start(), m.end(), m.group()) for kind, p in _PATTERNS.items() for m in p.finditer(text)
    ]
    cues += [SentimentCue("anger", m.start(), m.end(), m.group(), True) for m in _SHOUTING.finditer(text)]
    cues += [SentimentCue("anger", m.start(), m.end(), m.group(), True) for m in _EXCLAIM.finditer(text)]
    return sorted(cues, key=lambda c: (c.start, c.kind))


def _default_weights() -> dict[str, float]:
    return {
        "grievance": 0.35,
        "thanks": -0.45,
        "regulator": 0.6,
        "complaint": 0.5,
        "escalation": 0.4,
        "anger": 0.35,
        "repeat_contact": 0.35,
        "churn": 0.35,
    }


@dataclass
class LexiconSentiment:
    """The product's scorer (see the module docstring). ``models`` maps a language to ``text → score in [-1, 1]``
    (built by ``voxdesk.registry.build_sentiment``)."""

    models: Mapping[str, Callable[[str], float]]
    threshold: float = -0.1
    """Scores at or below this are dissatisfied."""
    model_weight: Mapping[str, float] = field(default_factory=lambda: {"zh": 0.2, "en": 1.0})
    """How much each language's model counts (SnowNLP was trained on product reviews, not calls)."""
    cue_weights: Mapping[str, float] = field(default_factory=_default_weights)

    def score(self, text: str, lang: str | None = None) -> SentimentResult:
        """Score one utterance (any thread)."""
        language = lang if lang in ("zh", "en") else ("zh" if _CJK.search(text) else "en")
        model = self.models.get(language)
        raw = model(text) if model is not None and text.strip() else 0.0
        cues = tuple(find_cues(text))
        process_question = bool(_QUESTION_ABOUT_PROCESS.search(text))
        counted = [c for c in cues if not (process_question and c.kind == "complaint")]
        kinds = {c.kind for c in counted}
        model_part = raw * self.model_weight.get(language, 1.0)
        if not kinds - {"thanks"} and _REQUEST.search(text.strip()):
            model_part = max(model_part, 0.0) * 0.5  # a plain request: neither angry nor delighted
        combined = model_part - sum(self.cue_weights.get(k, 0.0) for k in kinds)
        combined = max(-1.0, min(1.0, combined))
        decisive = bool(kinds & DECISIVE)
        return SentimentResult(round(combined, 4), decisive or combined <= self.threshold, language, raw, cues)
