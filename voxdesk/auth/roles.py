"""Roles and what each may open.

Roles are flat; a user may hold several. ``admin`` may do everything. Route guards name the roles they admit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

Role = Literal["agent", "supervisor", "qa", "marketing", "compliance", "branch", "admin"]
ROLES: tuple[Role, ...] = get_args(Role)

# Who may read customer profiles (every read is audited).
PROFILE_READERS: tuple[Role, ...] = ("agent", "supervisor", "qa", "marketing", "compliance", "branch", "admin")
PROFILE_WRITERS: tuple[Role, ...] = ("marketing", "admin")
USER_ADMINS: tuple[Role, ...] = ("admin",)
AUDIT_READERS: tuple[Role, ...] = ("compliance", "admin")
# Who may list and read call records with their transcripts and DTMF (every read is audited). Marketing and
# branch staff work from profiles and campaign outcomes, not from conversations.
CALL_READERS: tuple[Role, ...] = ("agent", "supervisor", "qa", "compliance", "admin")
# Who may play or download call recordings (audited as ``recording.read``): the people who review calls. Agents
# read transcripts instead; a recording is the bank's evidence of the conversation.
RECORDING_LISTENERS: tuple[Role, ...] = ("supervisor", "qa", "compliance", "admin")
# Who may read transcripts with card, ID, account and phone numbers in clear; everyone else gets them masked
# (core.pii.mask_text) in the call API and exports.
TRANSCRIPT_PII_READERS: tuple[Role, ...] = ("compliance", "admin")
# Who may watch a call's live events (transcript, suggestions, alerts) over its websocket: the agent on the call
# (assist panel) and supervisors monitoring it.
LIVE_CALL_WATCHERS: tuple[Role, ...] = ("agent", "supervisor", "admin")
# Who may open the live assist panel and mark suggestions used / dismissed; who supervises every live call (and
# sees the customer-dissatisfaction alerts meant for supervisors only); who sees customers' names in clear on the
# panel (agents see them masked: 王*, enough to address the customer).
ASSIST_USERS: tuple[Role, ...] = ("agent", "supervisor", "admin")
SUPERVISORS: tuple[Role, ...] = ("supervisor", "admin")
# Who creates and runs outbound campaigns and uploads their dialing lists; who may put a number on the do-not-call
# list (the safe direction: anyone running campaigns or compliance); who may take one off (compliance only).
CAMPAIGN_MANAGERS: tuple[Role, ...] = ("marketing", "supervisor", "admin")
DNC_EDITORS: tuple[Role, ...] = ("marketing", "supervisor", "compliance", "admin")
DNC_REMOVERS: tuple[Role, ...] = ("compliance", "admin")
CUSTOMER_NAME_READERS: tuple[Role, ...] = ("supervisor", "compliance", "admin")
# Who may read the question library and approved scripts, and search them (everyone who talks to customers or
# reviews what was said); who may edit questions and write script drafts; who may approve a script version.
KNOWLEDGE_READERS: tuple[Role, ...] = ("agent", "supervisor", "qa", "marketing", "compliance", "admin")
KNOWLEDGE_EDITORS: tuple[Role, ...] = ("supervisor", "compliance", "admin")
SCRIPT_APPROVERS: tuple[Role, ...] = ("compliance",)
"""An admin passes the route guard but the script store still refuses anyone without the compliance role."""
# Who may open the quality-inspection queue, call pages (with playback, audited) and analytics; who may confirm or
# reject findings, add missed ones and complete reviews. Supervisors and compliance read only.
QA_READERS: tuple[Role, ...] = ("qa", "supervisor", "compliance", "admin")
QA_REVIEWERS: tuple[Role, ...] = ("qa", "admin")


@dataclass(frozen=True)
class Area:
    """A part of the product shown as a tile on the home page."""

    key: str
    title_en: str
    title_zh: str
    href: str
    roles: tuple[Role, ...]
    ready: bool
    """False while the area is still being built (shown greyed out, not linked)."""


AREAS: tuple[Area, ...] = (
    Area("customers", "Customer profiles", "客户画像", "/customers", PROFILE_READERS, True),
    Area("assist", "Live assist panel", "坐席辅助", "/assist", ASSIST_USERS, True),
    Area("supervisor", "Live calls", "实时监控", "/supervisor", SUPERVISORS, True),
    Area("navigator", "Voice navigator", "智能语音导航", "/navigator", ("supervisor", "admin"), False),
    Area("campaigns", "Outbound campaigns", "外呼任务", "/campaigns", CAMPAIGN_MANAGERS, True),
    Area("qa", "Quality inspection", "质检", "/qa", QA_READERS, True),
    Area("marketing", "Precision marketing", "精准营销", "/marketing", ("marketing", "admin"), False),
    Area(
        "knowledge", "Knowledge and scripts", "知识库与话术", "/knowledge", ("compliance", "supervisor", "admin"), False
    ),
    Area("vision", "Branch vision", "网点视觉", "/vision", ("branch", "admin"), False),
    Area("audit", "Audit log", "审计日志", "/audit", AUDIT_READERS, True),
    Area("users", "Users and roles", "用户与角色", "/users", USER_ADMINS, True),
)


def allowed(user_roles: tuple[Role, ...] | list[Role], needed: tuple[Role, ...]) -> bool:
    """True when any of ``user_roles`` is in ``needed``, or the user is an admin."""
    return "admin" in user_roles or any(r in needed for r in user_roles)


def areas_for(user_roles: tuple[Role, ...] | list[Role]) -> list[Area]:
    """The home-page tiles this user may open."""
    return [a for a in AREAS if allowed(user_roles, a.roles)]
