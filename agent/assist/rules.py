"""The configurable rule set that checks a human agent's own speech during a call (Chinese and English).

Rules come in four groups:

* ``forbidden`` — words never to say: internal jargon, blanket assurances ("保证没问题", "I promise"), asking for a
  password or verification code;
* ``promises`` — promises no bank may make: guaranteed returns, risk-free, principal protection of non-deposit
  products, pressure to buy (phrases partly taken from :data:`knowledge.compliance_rules.BANNED_RULES` through
  ``script_rules``);
* ``rude`` — rude or impatient language ("你听不懂吗", "烦不烦", "what's wrong with you", "shut up");
* ``disclosure`` — the risk-disclosure check before a wealth, fund or insurance sale is confirmed. Its rules have a
  ``role``: ``alert`` (the ``agent.disclosure.missing`` alert itself, no phrases), ``disclosure`` (risk statements),
  ``confirmation`` (sale confirmations, which need a wealth/fund/insurance product in the discussion),
  ``wealth_confirmation`` (confirmations that name such a sale by themselves: "帮您申购") and ``topic`` (words that
  put such a sale into the discussion when no catalog product is named: "这款理财", "this fund").

:func:`load_rules` reads the shipped ``compliance_rules.yaml`` beside this module and, when given, merges a bank's
file of the same shape: a rule with an existing id replaces it (in whichever group the bank puts it), a new id is
added, ids under ``disabled`` are removed. Blocking file reads on the calling thread; the result is immutable.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from core.errors import ConfigError
from core.events import Lang, Severity
from core.logging import get_logger
from knowledge.compliance import DISCLOSED_CATEGORIES
from knowledge.compliance_rules import BANNED_RULES

__all__ = ["DEFAULT_RULES_PATH", "GROUPS", "AssistRule", "RuleGroup", "RuleRole", "RuleSet", "load_rules"]

RuleGroup = Literal["forbidden", "promises", "rude", "disclosure"]
RuleRole = Literal["alert", "disclosure", "confirmation", "wealth_confirmation", "topic"]
GROUPS: tuple[RuleGroup, ...] = ("forbidden", "promises", "rude", "disclosure")
DEFAULT_RULES_PATH = Path(__file__).with_name("compliance_rules.yaml")
"""The shipped default rule file (bilingual)."""

_SCRIPT_RULES = {rule.rule_id: rule for rule in BANNED_RULES}
log = get_logger(__name__)


class AssistRule(BaseModel):
    """One rule: the phrases that trigger it and the alert it raises (``message_zh``/``message_en``; a disclosure
    alert's message may contain ``{product}``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern=r"^agent\.[a-z0-9_]+\.[a-z0-9_]+$")
    """``agent.<group>.<name>``, e.g. ``agent.promises.guaranteed_return``."""
    severity: Severity = "warning"
    message_zh: str = ""
    message_en: str = ""
    phrases_zh: tuple[str, ...] = ()
    phrases_en: tuple[str, ...] = ()
    fuzzy: bool = True
    """Tolerate small ASR errors (see :class:`nlu.phrases.PhraseMatcher`); off for short, ambiguous phrases."""
    negatable: bool = False
    """A negation right before the phrase undoes it ("不保本", "I can't promise returns")."""
    role: RuleRole = "alert"
    script_rules: tuple[str, ...] = ()
    """Ids of :data:`knowledge.compliance_rules.BANNED_RULES` whose phrases this rule also matches."""
    except_categories: tuple[str, ...] = ()
    """Product categories for which the rule does not apply: it is silent while every product discussed in the
    call is in one of them (e.g. ``deposit`` for principal protection)."""

    @model_validator(mode="after")
    def _check(self) -> AssistRule:
        unknown = [r for r in self.script_rules if r not in _SCRIPT_RULES]
        if unknown:
            raise ValueError(f"unknown script rule(s) {', '.join(unknown)}; known: {', '.join(_SCRIPT_RULES)}")
        if self.role == "alert" and not (self.message_zh and self.message_en):
            raise ValueError("an alerting rule needs message_zh and message_en")
        return self

    @property
    def phrases(self) -> tuple[str, ...]:
        """All phrases, Chinese then English, including those of ``script_rules`` (duplicates removed)."""
        extra_zh = [p for r in self.script_rules for p in _SCRIPT_RULES[r].zh]
        extra_en = [p for r in self.script_rules for p in _SCRIPT_RULES[r].en]
        return tuple(dict.fromkeys([*self.phrases_zh, *extra_zh, *self.phrases_en, *extra_en]))

    def message(self, lang: Lang) -> str:
        """The alert text in the panel's language."""
        return self.message_zh if lang == "zh" else self.message_en


class RuleSet(BaseModel):
    """The rules in force, by group, and the product categories that need a risk disclosure before a sale."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    forbidden: tuple[AssistRule, ...] = ()
    promises: tuple[AssistRule, ...] = ()
    rude: tuple[AssistRule, ...] = ()
    disclosure: tuple[AssistRule, ...] = ()
    disclosure_categories: tuple[str, ...] = tuple(sorted(DISCLOSED_CATEGORIES))

    @model_validator(mode="after")
    def _check(self) -> RuleSet:
        seen: set[str] = set()
        for group in GROUPS:
            for rule in getattr(self, group):
                if rule.id in seen:
                    raise ValueError(f"duplicate rule id {rule.id}")
                seen.add(rule.id)
                if group != "disclosure" and rule.role != "alert":
                    raise ValueError(f"rule {rule.id}: role {rule.role} belongs in the disclosure group")
                if (rule.role != "alert" or group != "disclosure") and not rule.phrases:
                    raise ValueError(f"rule {rule.id} has no phrases")
        if sum(r.role == "alert" for r in self.disclosure) > 1:
            raise ValueError("the disclosure group has more than one alerting rule")
        return self

    def rules(self) -> Iterator[tuple[RuleGroup, AssistRule]]:
        """Every rule with its group, in file order."""
        for group in GROUPS:
            for rule in getattr(self, group):
                yield group, rule

    def get(self, rule_id: str) -> AssistRule | None:
        """The rule with this id, if any."""
        return next((rule for _, rule in self.rules() if rule.id == rule_id), None)

    @property
    def disclosure_alert(self) -> AssistRule | None:
        """The rule raised when a sale is confirmed before any risk disclosure (``None``: check disabled)."""
        return next((rule for rule in self.disclosure if rule.role == "alert"), None)


class _RuleFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    forbidden: list[AssistRule] = []
    promises: list[AssistRule] = []
    rude: list[AssistRule] = []
    disclosure: list[AssistRule] = []
    disclosure_categories: list[str] | None = None
    disabled: list[str] = []


def _read(path: Path) -> _RuleFile:
    try:
        doc: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"assist rules file not found: {path}", file=str(path), problem="not found") from exc
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        problem = " ".join(str(exc).split())[:300]
        raise ConfigError(
            f"assist rules file {path} cannot be read: {problem}", file=str(path), problem=problem
        ) from exc
    if doc is None:
        doc = {}
    if not isinstance(doc, dict):
        problem = "the top level must be a mapping of rule groups"
        raise ConfigError(f"assist rules file {path} is invalid: {problem}", file=str(path), problem=problem)
    try:
        return _RuleFile.model_validate(doc)
    except ValidationError as exc:
        problem = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(file)'}: {err['msg']}" for err in exc.errors()[:5]
        )
        raise ConfigError(f"assist rules file {path} is invalid: {problem}", file=str(path), problem=problem) from exc


def _build(path: Path, **groups: Any) -> RuleSet:
    try:
        return RuleSet(**groups)
    except ValidationError as exc:
        problem = "; ".join(err["msg"] for err in exc.errors()[:5])
        raise ConfigError(f"assist rules file {path} is invalid: {problem}", file=str(path), problem=problem) from exc


def load_rules(path: Path | None = None) -> RuleSet:
    """The shipped default rules, merged with the bank's rule file at ``path`` when given (see the module
    docstring). Raises :class:`core.errors.ConfigError` naming the file and the problem for a missing file, bad
    YAML or an invalid rule."""
    default = _read(DEFAULT_RULES_PATH)
    groups: dict[str, list[AssistRule]] = {g: list(getattr(default, g)) for g in GROUPS}
    categories = default.disclosure_categories
    if path is None:
        return _build(DEFAULT_RULES_PATH, **groups, **_categories(categories))
    bank = _read(path)
    for group in GROUPS:
        for rule in getattr(bank, group):
            replaced = False
            for rules in groups.values():
                for i, old in enumerate(rules):
                    if old.id == rule.id:
                        if rules is groups[group]:
                            rules[i] = rule
                            replaced = True
                        else:
                            del rules[i]
                        break
            if not replaced:
                groups[group].append(rule)
    known = {rule.id for rules in groups.values() for rule in rules}
    for rule_id in bank.disabled:
        if rule_id not in known:
            log.warning("assist rule to disable not found", rule_id=rule_id, file=str(path))
    disabled = set(bank.disabled)
    merged = {g: [r for r in rules if r.id not in disabled] for g, rules in groups.items()}
    if bank.disclosure_categories is not None:
        categories = bank.disclosure_categories
    return _build(path, **merged, **_categories(categories))


def _categories(categories: list[str] | None) -> dict[str, Any]:
    return {} if categories is None else {"disclosure_categories": tuple(categories)}
