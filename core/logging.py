"""Structured logging: structlog on top of stdlib ``logging``, JSON lines in production, with a PII filter.

:func:`configure_logging` routes both structlog loggers and plain stdlib loggers (uvicorn, sqlalchemy,
alembic, …) through one handler whose formatter runs :func:`mask_pii` just before rendering, so every line
written passes the filter. Log messages are static strings; customer data goes into structured fields.

    log = get_logger(__name__)
    log.info("caller identified", call_id=call_id, phone=phone)   # phone is written as "***"
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from core.errors import ConfigError
from core.pii import cn_id_valid, luhn_valid, mask_text, mask_value

__all__ = ["cn_id_valid", "configure_logging", "get_logger", "luhn_valid", "mask_pii", "mask_text"]

# Loggers that libraries give their own handlers; those handlers would bypass the filter.
_REROUTED_LOGGERS = (
    "uvicorn", "uvicorn.error", "uvicorn.access", "gunicorn.error", "gunicorn.access",
    "sqlalchemy", "sqlalchemy.engine", "sqlalchemy.engine.Engine", "alembic", "py.warnings",
)  # fmt: skip
_META_KEYS = frozenset({"_record", "_from_structlog", "exc_info"})


def mask_pii(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
    """structlog processor: mask PII in the event message and in every field, recursively.

    Strings are masked with :func:`core.pii.mask_text`; fields named like ``customer_name`` get
    :func:`core.pii.mask_name`, fields like ``phone``/``card_number`` are replaced by ``***`` (see
    :func:`core.pii.mask_value`). Non-JSON objects become their masked ``str()``. Put it after
    ``format_exc_info`` (so traceback text is masked too) and before the renderer. Thread-safe.
    """
    out: dict[str, Any] = {}
    for key, value in event_dict.items():
        if key in _META_KEYS and not isinstance(value, str):
            out[key] = value
        else:
            out[key] = mask_value(value, key)
    return out


_MASK_PII: Processor = mask_pii  # the parameter of configure_logging hides the name


def _level_number(level: str) -> int:
    number = logging.getLevelNamesMapping().get(level.strip().upper())
    if number is None:
        raise ConfigError("Unknown log level.", level=level)
    return number


def configure_logging(level: str, json_logs: bool, mask_pii: bool, *, stream: TextIO | None = None) -> None:
    """Set up logging for the whole process. Call once at start-up, from the main thread, before any worker
    threads or tasks log (not thread-safe); calling it again replaces the previous set-up.

    ``level`` is a stdlib level name (``"DEBUG"``, ``"info"``, …; anything else raises
    :class:`core.errors.ConfigError`). ``json_logs`` writes one JSON object per line (keys ``event``,
    ``level``, ``logger``, ``timestamp`` in ISO 8601 UTC, plus the fields), otherwise a human-readable console
    format. ``mask_pii`` runs :func:`mask_pii` on every record, structlog and stdlib alike; it must be on in
    production. Lines go to ``stream``, default ``sys.stderr`` (stdout stays free for command output).

    All handlers on the root logger and the stream handlers of already existing library loggers (uvicorn,
    sqlalchemy, …) are removed and those loggers propagate to the root, so nothing bypasses the filter. Start
    uvicorn with ``log_config=None`` and create SQLAlchemy engines without ``echo=True`` (which installs its own
    handler); set the ``sqlalchemy.engine`` logger level instead.
    """
    level_no = _level_number(level)
    timestamper = structlog.processors.TimeStamper(fmt="iso", utc=True)
    foreign_pre_chain: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.ExtraAdder(),
        timestamper,
    ]
    final: list[Processor] = [structlog.stdlib.ProcessorFormatter.remove_processors_meta]
    if json_logs or mask_pii:
        final.append(structlog.processors.format_exc_info)  # traceback text must be masked too
    if mask_pii:
        final.append(_MASK_PII)
    if json_logs:
        final.append(structlog.processors.JSONRenderer(ensure_ascii=False))
    else:
        out = stream or sys.stderr
        final.append(structlog.dev.ConsoleRenderer(colors=out.isatty(), sort_keys=False))

    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(processors=final, foreign_pre_chain=foreign_pre_chain))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level_no)
    _reroute_library_loggers()
    logging.captureWarnings(True)

    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.stdlib.filter_by_level,
            structlog.stdlib.add_log_level,
            structlog.stdlib.add_logger_name,
            structlog.stdlib.PositionalArgumentsFormatter(),
            timestamper,
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


def _reroute_library_loggers() -> None:
    existing: MutableMapping[str, Any] = logging.root.manager.loggerDict
    names = set(_REROUTED_LOGGERS) | {n for n, lg in existing.items() if isinstance(lg, logging.Logger)}
    for name in names:
        lg = logging.getLogger(name)
        streams = [h for h in lg.handlers if isinstance(h, logging.StreamHandler)]
        for h in streams:
            lg.removeHandler(h)
        if streams or name in _REROUTED_LOGGERS:
            lg.propagate = True


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    """A structlog logger named ``name`` (use ``__name__``). Thread-safe; binding returns a new logger.

    Before :func:`configure_logging` runs, structlog's defaults apply (no PII filter).
    """
    logger: structlog.stdlib.BoundLogger = structlog.stdlib.get_logger(name)
    return logger
