"""Loading and checking navigator flow files (see :mod:`agent.navigator.flows` for the format).

:func:`load_flows` reads YAML files, validates every step, and checks what pydantic cannot: step references
(``next``, ``goto``, ``else``, ``on_fail``), named flows, prompt keys, duplicate ids, slot options, ``$variables``
and that a ``main`` flow exists. Every problem is a :class:`core.errors.ConfigError` naming the file, flow and step.
Blocking file reads; call at start-up.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import TypeAdapter, ValidationError

from agent.navigator.flows import (
    AskStep,
    BranchStep,
    CallStep,
    EndStep,
    Flow,
    FlowSet,
    FlowStep,
    IntentStep,
    SayStep,
    Step,
    Text,
    TransferStep,
    parse_condition,
)
from core.errors import ConfigError

__all__ = ["BUILTIN_VARIABLES", "load_flows", "shipped_flow_paths"]

BUILTIN_VARIABLES = frozenset({"customer_id", "identity_verified", "intent", "today"})
"""Variables the engine sets itself."""
_STEP = TypeAdapter[Step](Step)


def shipped_flow_paths() -> list[Path]:
    """The YAML flow files shipped in ``agent/navigator/flows/``, sorted by name."""
    folder = Path(str(resources.files("agent.navigator") / "flows"))
    return sorted(folder.glob("*.yaml"))


def load_flows(paths: Iterable[Path]) -> FlowSet:
    """Read and check flow files; raises :class:`ConfigError` (``file``, ``flow``, ``step`` in the message)."""
    flows: dict[str, tuple[Flow, str]] = {}
    prompts: dict[str, Text] = {}
    default_group = "general"
    for path in paths:
        file = str(path)
        try:
            raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"flow file {file}: cannot read: {exc}", file=file) from exc
        if not isinstance(raw, dict):
            raise _error(file, None, None, "a flow file is a mapping with 'prompts' and 'flows'")
        unknown = set(raw) - {"prompts", "flows", "default_skill_group"}
        if unknown:
            raise _error(file, None, None, f"unknown top-level keys {sorted(unknown)}")
        default_group = str(raw.get("default_skill_group", default_group))
        for key, value in _mapping(raw.get("prompts") or {}, file, "prompts").items():
            if key in prompts:
                raise _error(file, None, None, f"prompt {key!r} is declared twice")
            prompts[key] = _text(value, file, None, None, f"prompt {key!r}")
        for raw_flow in raw.get("flows") or []:
            flow = _flow(raw_flow, file)
            if flow.id in flows:
                raise _error(file, flow.id, None, f"flow {flow.id!r} is also declared in {flows[flow.id][1]}")
            flows[flow.id] = (flow, file)
    if "main" not in flows:
        raise ConfigError("flow files declare no 'main' flow")
    variables = set(BUILTIN_VARIABLES)  # variables are per call, shared by all flows
    for flow, _ in flows.values():
        for s in flow.steps:
            if isinstance(s, AskStep):
                variables |= {s.slot.name, f"{s.slot.name}_label"}
            elif isinstance(s, CallStep):
                variables.add(s.result)
    intents: dict[str, str] = {}
    for flow, file in flows.values():
        if flow.intent is not None:
            if flow.intent in intents:
                raise _error(file, flow.id, None, f"intent {flow.intent!r} already has flow {intents[flow.intent]!r}")
            intents[flow.intent] = flow.id
        _check_flow(flow, file, set(flows), prompts, variables)
    return FlowSet(flows={k: v[0] for k, v in flows.items()}, prompts=prompts, default_skill_group=default_group)


def _flow(raw: object, file: str) -> Flow:
    if not isinstance(raw, dict) or not isinstance(raw.get("id"), str):
        raise _error(file, None, None, "each flow is a mapping with an 'id'")
    flow_id = raw["id"]
    steps: list[Step] = []
    for i, raw_step in enumerate(raw.get("steps") or []):
        step_id = raw_step.get("id", f"#{i + 1}") if isinstance(raw_step, dict) else f"#{i + 1}"
        try:
            steps.append(_STEP.validate_python(raw_step))
        except ValidationError as exc:
            raise _error(file, flow_id, step_id, _problem(exc)) from exc
    try:
        return Flow.model_validate({**raw, "steps": steps})
    except ValidationError as exc:
        raise _error(file, flow_id, None, _problem(exc)) from exc


def _check_flow(flow: Flow, file: str, flow_ids: set[str], prompts: Mapping[str, Text], variables: set[str]) -> None:
    ids = [s.id for s in flow.steps]
    dupes = {i for i in ids if ids.count(i) > 1}
    if dupes:
        raise _error(file, flow.id, sorted(dupes)[0], "step id is used twice")
    known = set(ids)
    for s in flow.steps:
        targets: list[str | None] = [s.next]
        refs: list[object] = []
        if isinstance(s, SayStep):
            refs = [s.prompt]
        elif isinstance(s, AskStep):
            refs = [s.prompt, s.reprompt, s.no_input]
            targets.append(s.on_fail)
            targets += [o.goto for o in s.slot.options]
            _check_slot(s, file, flow.id)
        elif isinstance(s, IntentStep):
            refs = [s.prompt, s.reprompt, s.no_input, s.confirm]
        elif isinstance(s, BranchStep):
            targets += [c.goto for c in s.cases] + [s.otherwise]
            for c in s.cases:
                try:
                    parse_condition(c.when)
                except ValueError as exc:
                    raise _error(file, flow.id, s.id, str(exc)) from exc
        elif isinstance(s, CallStep):
            for name, arg in s.args.items():
                if isinstance(arg, str) and arg.startswith("$") and arg[1:] not in variables:
                    raise _error(file, flow.id, s.id, f"argument {name!r} uses unknown variable {arg!r}")
        elif isinstance(s, FlowStep) and s.flow not in flow_ids:
            raise _error(file, flow.id, s.id, f"unknown flow {s.flow!r}")
        elif isinstance(s, TransferStep | EndStep) and s.prompt is not None:
            refs = [s.prompt]
        for target in targets:
            if target is not None and target not in known:
                raise _error(file, flow.id, s.id, f"unknown step {target!r}")
        for ref in refs:
            if isinstance(ref, str) and ref not in prompts:
                raise _error(file, flow.id, s.id, f"unknown prompt {ref!r}")


def _check_slot(s: AskStep, file: str, flow_id: str) -> None:
    slot = s.slot
    if slot.type == "digits" and slot.length is None:
        raise _error(file, flow_id, s.id, "a digits slot needs a length")
    if slot.type == "number" and (slot.minimum is None or slot.maximum is None or slot.minimum > slot.maximum):
        raise _error(file, flow_id, s.id, "a number slot needs a minimum and a maximum (minimum ≤ maximum)")
    if slot.type in ("choice", "branch"):
        if not slot.options:
            raise _error(file, flow_id, s.id, f"a {slot.type} slot needs options")
        keys = [o.dtmf for o in slot.options]
        if len(set(keys)) != len(keys):
            raise _error(file, flow_id, s.id, "two options share a DTMF key")
        if any(not (o.synonyms_zh and o.synonyms_en) for o in slot.options):
            raise _error(file, flow_id, s.id, "every option needs synonyms in zh and en")
        if slot.type == "branch" and any(o.goto is None for o in slot.options):
            raise _error(file, flow_id, s.id, "every option of a branch slot needs a goto")
    elif slot.options:
        raise _error(file, flow_id, s.id, f"a {slot.type} slot takes no options")


def _mapping(value: object, file: str, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _error(file, None, None, f"{what} must be a mapping")
    return {str(k): v for k, v in value.items()}


def _text(value: object, file: str, flow: str | None, step: str | None, what: str) -> Text:
    if not isinstance(value, dict):
        raise _error(file, flow, step, f"{what} must be a mapping of zh and en")
    for lang in ("zh", "en"):
        if not value.get(lang):
            raise _error(file, flow, step, f"{what} is missing in language {lang!r}")
    try:
        return Text.model_validate(value)
    except ValidationError as exc:
        raise _error(file, flow, step, f"{what}: {_problem(exc)}") from exc


def _problem(exc: ValidationError) -> str:
    errors = exc.errors()
    for e in errors:
        if e["type"] == "missing" and e["loc"] and e["loc"][-1] in ("zh", "en"):
            return f"missing prompt in language {e['loc'][-1]!r} ({'.'.join(str(p) for p in e['loc'])})"
    first = errors[0]
    where = ".".join(str(p) for p in first["loc"])
    if first["type"] == "union_tag_invalid":
        return f"unknown step kind ({first['msg']})"
    if first["type"] == "literal_error" and "type" in first["loc"]:
        return f"unknown slot type ({first['msg']})"
    return f"{where}: {first['msg']}" if where else first["msg"]


def _error(file: str, flow: str | None, step: str | None, problem: str) -> ConfigError:
    where = f"flow file {file}" + (f", flow {flow!r}" if flow else "") + (f", step {step!r}" if step else "")
    return ConfigError(f"{where}: {problem}", file=file, flow=flow, step=step)
