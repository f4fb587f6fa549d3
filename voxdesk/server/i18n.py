"""UI text of the live pages (assist panel, supervisor view) in Chinese and English.

The language comes from ``?lang=zh|en`` (remembered in the ``voxdesk_lang`` cookie), else the cookie, else
Chinese. Pages hand the chosen table to their script as JSON.
"""

from __future__ import annotations

from typing import Literal

UiLang = Literal["zh", "en"]
LANG_COOKIE = "voxdesk_lang"

TEXT: dict[str, dict[UiLang, str]] = {
    "assist.title": {"zh": "坐席辅助", "en": "Live assist"},
    "supervisor.title": {"zh": "实时监控", "en": "Live calls"},
    "status.connecting": {"zh": "连接中…", "en": "Connecting…"},
    "status.waiting": {"zh": "等待来电（软电话：{sip}）", "en": "Waiting for a call (softphone: {sip})"},
    "status.no_sip": {"zh": "未设置软电话，请从下方选择通话", "en": "No softphone set: pick a call below"},
    "status.on_call": {"zh": "通话中", "en": "On call"},
    "status.ended": {"zh": "通话已结束", "en": "Call ended"},
    "status.offline": {"zh": "连接已断开，正在重连…", "en": "Disconnected, reconnecting…"},
    "pick.title": {"zh": "选择通话", "en": "Pick a call"},
    "pick.none": {"zh": "当前没有进行中的辅助通话", "en": "No assisted call in progress"},
    "pick.open": {"zh": "打开", "en": "Open"},
    "transcript.title": {"zh": "实时转写", "en": "Live transcript"},
    "leg.customer": {"zh": "客户", "en": "Customer"},
    "leg.agent": {"zh": "坐席", "en": "Agent"},
    "leg.bot": {"zh": "机器人", "en": "Bot"},
    "customer.title": {"zh": "客户画像", "en": "Customer"},
    "customer.unknown": {"zh": "未识别来电客户", "en": "Caller not identified"},
    "customer.tier": {"zh": "分层", "en": "Tier"},
    "customer.grade": {"zh": "分级", "en": "Grade"},
    "customer.groups": {"zh": "客群", "en": "Groups"},
    "customer.risk": {"zh": "风险承受能力", "en": "Risk tolerance"},
    "customer.risk_none": {"zh": "未评估", "en": "not assessed"},
    "customer.consent": {"zh": "授权", "en": "Consent"},
    "customer.holdings": {"zh": "持有产品", "en": "Holdings"},
    "customer.interactions": {"zh": "近期交互", "en": "Recent interactions"},
    "customer.visits": {"zh": "网点到访", "en": "Branch visits"},
    "customer.none": {"zh": "无", "en": "none"},
    "customer.age": {"zh": "年龄", "en": "Age"},
    "consent.marketing_calls": {"zh": "营销", "en": "marketing"},
    "consent.recording": {"zh": "录音", "en": "recording"},
    "consent.biometrics": {"zh": "生物识别", "en": "biometrics"},
    "vip": {"zh": "贵宾", "en": "VIP"},
    "handoff.title": {"zh": "语音导航转来", "en": "Handed over by the voice navigator"},
    "handoff.reason": {"zh": "转人工原因", "en": "Reason"},
    "handoff.intent": {"zh": "来电诉求", "en": "Caller asked about"},
    "handoff.identity": {"zh": "身份核验", "en": "Identity"},
    "handoff.verified": {"zh": "已核验", "en": "verified"},
    "handoff.unverified": {"zh": "未核验", "en": "not verified"},
    "handoff.slots": {"zh": "已收集信息", "en": "Collected"},
    "handoff.transcript": {"zh": "导航对话", "en": "Navigator conversation"},
    "handoff.group": {"zh": "技能组", "en": "Skill group"},
    "speaker.bot": {"zh": "机器人", "en": "Bot"},
    "speaker.caller": {"zh": "客户", "en": "Caller"},
    "speaker.dtmf": {"zh": "按键", "en": "Keypad"},
    "intent.title": {"zh": "识别的问题", "en": "Detected question"},
    "intent.none": {"zh": "尚未识别", "en": "Nothing detected yet"},
    "intent.oos": {"zh": "未匹配到标准问题", "en": "No library question matched"},
    "suggestions.title": {"zh": "推荐话术与产品", "en": "Suggested answer and products"},
    "suggestions.none": {"zh": "暂无推荐", "en": "No suggestions yet"},
    "suggestion.script": {"zh": "标准话术", "en": "Approved script"},
    "suggestion.products": {"zh": "适合的产品", "en": "Suitable products"},
    "suggestion.reason": {"zh": "依据", "en": "Why"},
    "suggestion.used": {"zh": "已使用", "en": "Used"},
    "suggestion.dismiss": {"zh": "忽略", "en": "Dismiss"},
    "suggestion.version": {"zh": "版本", "en": "version"},
    "alerts.title": {"zh": "合规提醒", "en": "Compliance alerts"},
    "alerts.none": {"zh": "暂无提醒", "en": "No alerts"},
    "summary.title": {"zh": "通话小结", "en": "Call summary"},
    "sup.call": {"zh": "通话", "en": "Call"},
    "sup.line": {"zh": "线路", "en": "Line"},
    "sup.agent": {"zh": "坐席", "en": "Agent"},
    "sup.customer": {"zh": "客户", "en": "Customer"},
    "sup.duration": {"zh": "时长", "en": "Duration"},
    "sup.sentiment": {"zh": "客户情绪", "en": "Customer sentiment"},
    "sup.alerts": {"zh": "提醒", "en": "Alerts"},
    "sup.intent": {"zh": "最近问题", "en": "Last question"},
    "sup.open": {"zh": "查看", "en": "Open"},
    "sup.none": {"zh": "当前没有进行中的辅助通话", "en": "No assisted call in progress"},
    "sup.live": {"zh": "实时", "en": "Live"},
    "sup.feed": {"zh": "实时提醒", "en": "Live alerts"},
    "sentiment.negative": {"zh": "不满", "en": "negative"},
    "sentiment.neutral": {"zh": "平稳", "en": "neutral"},
    "sentiment.positive": {"zh": "满意", "en": "positive"},
}


def pick_lang(query: str | None, cookie: str | None) -> UiLang:
    """The UI language: the query parameter, else the cookie, else Chinese."""
    for value in (query, cookie):
        if value in ("zh", "en"):
            return "zh" if value == "zh" else "en"
    return "zh"


def table(lang: UiLang) -> dict[str, str]:
    """Every UI string in ``lang``."""
    return {key: texts[lang] for key, texts in TEXT.items()}
