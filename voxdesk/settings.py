"""The one settings root of Voxdesk.

Built once in the application shell (:func:`load_settings`) and passed down through constructors; domain packages
never read the environment. Sources, highest priority first:

1. environment variables ``VOXDESK_<SECTION>_<FIELD>`` (e.g. ``VOXDESK_DATABASE_URL``,
   ``VOXDESK_AUTH_SESSION_SECRET``, ``VOXDESK_SHARED_DATA``);
2. a TOML file: ``--config FILE``, else ``$VOXDESK_CONFIG``, else ``./voxdesk.toml`` when present;
3. the defaults below (a single-machine install: SQLite under ``./var``, ZeroMQ bus).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from core.errors import ConfigError
from voxdesk.settings_dialer import DialerSettings
from voxdesk.settings_qa import QaSettings

DEFAULT_SECRET = "change-me-voxdesk-dev-secret"  # noqa: S105 - the known default that production refuses


class DatabaseSettings(BaseModel):
    """Storage. SQLite by default; PostgreSQL via ``postgresql+psycopg://user@host:5432/db``."""

    url: str = "sqlite:///var/voxdesk.db"
    echo: bool = False
    pool_size: int = 5


class BusSettings(BaseModel):
    """The event bus between processes."""

    backend: Literal["zmq", "redis", "memory"] = "zmq"
    zmq_frontend: str = "ipc://var/run/bus-in.sock"
    """Where publishers connect (the proxy's XSUB side)."""
    zmq_backend: str = "ipc://var/run/bus-out.sock"
    """Where subscribers connect (the proxy's XPUB side)."""
    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_stream_prefix: str = "voxdesk:events"
    redis_maxlen: int = 100_000
    """Approximate cap on each Redis stream's length (entries)."""


class ServerSettings(BaseModel):
    """The HTTP server (API, websockets, pages)."""

    host: str = "127.0.0.1"
    port: int = 8000
    max_upload_bytes: int = 50 * 1024 * 1024
    """Largest accepted upload (bytes); larger requests get HTTP 413."""
    trusted_proxies: list[str] = Field(default_factory=list)


class AuthSettings(BaseModel):
    """Users, sessions and tokens."""

    session_secret: SecretStr = SecretStr(DEFAULT_SECRET)
    """Signs session cookies and CSRF tokens; must be changed in production."""
    session_ttl_s: int = 8 * 3600
    """Lifetime of a login session (s)."""
    cookie_secure: bool = False
    """Mark the session cookie ``Secure`` (HTTPS only); on in production."""
    metrics_token: SecretStr | None = None
    """Bearer token a Prometheus scraper may use on ``/metrics`` instead of a user login."""
    max_failed_logins: int = 5
    lockout_s: int = 300


class LoggingSettings(BaseModel):
    """Structured logs."""

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    json_logs: bool = True
    mask_pii: bool = True
    """Mask card numbers, ID numbers, phone numbers and names in every log record."""


class ModelSettings(BaseModel):
    """Where provisioned model files live. Nothing is downloaded: weights come from installed packages."""

    cache_dir: Path = Path("var/models")
    whisper_model: Literal["base", "tiny.en"] = "base"
    compute_type: str = "int8"
    threads: int = 2


class AsrSettings(BaseModel):
    """Speech recognition, live and batch."""

    speech_workers: int = 1
    """Speech worker processes started by ``voxdesk serve``; each call's streams go to one worker."""
    inference_threads: int = Field(default=2, ge=1)
    """Recognition passes a speech worker runs at once (each on ``models.threads / inference_threads`` CPU
    threads): two one-thread passes keep two cores busier than one two-thread pass, so finals wait less."""
    speech_endpoint_template: str = "ipc://var/run/speech-{index}.sock"
    """Where speech worker ``index`` receives audio (PULL); media workers connect to every one."""
    vad: Literal["silero", "webrtc"] = "silero"
    vad_threshold: float = 0.4
    """Speech probability above which a frame counts as speech (Silero gives 0.5-0.6 on 8 kHz G.711 speech,
    0.7-0.9 on wideband, so 0.4 suits telephone lines)."""
    endpoint_silence_ms: int = 600
    """Silence after speech that ends an utterance (ms)."""
    min_speech_ms: int = 250
    """Shorter bursts are ignored (clicks, breaths) (ms)."""
    max_utterance_ms: int = 20_000
    """An utterance this long is finalised even without a pause (ms)."""
    partial_interval_ms: int = 500
    """Re-decode the utterance in progress about this often (ms); 0 turns partials off."""
    partial_budget: float = 0.5
    """Largest share (0-1) of a speech worker's time that partials may take; beyond it they are skipped first, so
    finals never queue behind them when many calls speak at once."""
    early_final_ms: int | None = Field(default=300, ge=0)
    """Silence after speech (ms) from which a live final is decoded speculatively, before ``endpoint_silence_ms``
    ends the utterance: from 300 ms on (the post-roll kept after speech) the final's audio is decided, so decoding
    it then takes the decode time (~200-300 ms) out of the end-of-speech → final latency. When speech resumes the
    pass is wasted (counted as ``early_finals_wasted``). Unset or 0 turns it off; a speech worker refuses to start
    with a value below the 300 ms post-roll (the audio would not be decided yet)."""
    live_beam_size: int = 3
    """Beam of live finals (partials are always greedy): 3 is a little more accurate than greedy on telephone
    Mandarin and still fits the final-latency budget."""
    live_partial_window_s: float | None = 5.0
    """Whisper encoder window of live partials: fitted to the utterance, at least this long (s); unset = 30 s."""
    live_final_window_s: float | None = 10.0
    """Whisper encoder window of live finals: fitted to the utterance, at least this long (s). It makes a final
    about 4x cheaper than Whisper's full 30 s window (unset), which is what lets 8 calls share 2 cores; batch
    transcription (QA, ``voxdesk eval asr``) always uses the full window."""
    batch_beam_size: int = 5
    english_only_model: Literal["base", "tiny.en"] = "base"
    """Model for lines whose language is ``en``; ``tiny.en`` is faster."""
    zh_prompt: str = "以下是普通话的句子，关于银行业务。"
    dialog_endpoint_silence_ms: int = Field(default=400, ge=100)
    """Silence that ends an utterance on a leg talking to the voice bot (navigator and outbound lines), ms: the
    caller waits for the bot after each turn, so the turn ends sooner than in a conversation between people."""
    dialog_min_speech_ms: int = Field(default=80, ge=40)
    """Speech that starts an utterance on a bot leg (ms): it is also the barge-in trigger, so it is kept short;
    a click or a backchannel that starts one only pauses the bot, which then resumes. Measured: a caller's short
    "No." on a G.711 call gave Silero only 96 ms above the threshold, so 120 ms lost 5 of 111 turns."""
    dialog_post_roll_ms: int = Field(default=200, ge=0)
    """Audio kept after the last speech frame on a bot leg (ms); the speculative final starts here."""
    dialog_early_final_ms: int | None = Field(default=200, ge=0)
    """Silence after which a bot leg's final is decoded speculatively (ms; at least ``dialog_post_roll_ms``)."""
    dialog_final_window_s: float | None = Field(default=5.0, gt=0)
    """Whisper encoder window of a bot leg's finals: fitted to the utterance, at least this long (s). Callers'
    turns to a bot are short, and the 5 s window halves the decode time of the 10 s one (measured 68-81 vs
    142-144 ms per final, base model, one thread), which is most of what the caller waits for."""
    hotwords: list[str] = Field(
        default_factory=lambda: ["信用卡", "储蓄卡", "理财", "基金", "贷款", "还款", "账单", "额度", "挂失", "转账"]
    )
    """Bank vocabulary given to the recogniser as hot words / prompt."""


class LineSettings(BaseModel):
    """A SIP line (a number callers dial, or the trunk of a campaign)."""

    name: str
    kind: Literal["navigator", "assisted", "outbound"]
    number: str
    """The called number / SIP user part that selects this line, e.g. ``"95500"``."""
    lang: Literal["zh", "en", "auto"] = "zh"
    skill_group: str = "general"
    agent_uri: str | None = None
    """For ``assisted`` lines: the SIP URI of the agent's softphone (or a Kamailio-registered agent)."""
    disclosure_wav: Path | None = None
    """Recording disclosure prompt played at answer (WAV, any rate); ``None`` plays nothing."""


class TelephonySettings(BaseModel):
    """SIP media workers and lines."""

    media_workers: int = 1
    sip_host: str = "127.0.0.1"
    sip_port: int = 5060
    """Port of media worker 0 (the embedded default front door); worker ``i`` listens on ``sip_port + i``
    (with Kamailio in front, set ``sip_port`` to the first worker port, e.g. 5070)."""
    rtp_port_start: int = 20000
    max_calls_per_worker: int = 4
    """pjsua2's compiled limit; an assisted call uses two slots (customer leg + agent leg)."""
    ring_timeout_s: float = 30.0
    """Outbound legs not answered within this are cancelled (s)."""
    clock_rate_hz: Literal[8000, 16000] = 8000
    """Rate of the media workers' conference bridge (Hz): recordings, streams and bot audio use it."""
    play_endpoint_template: str = "ipc://var/run/play-{index}.sock"
    """Where media worker ``index`` receives bot audio and call commands from navigator sessions (PULL)."""
    lines: list[LineSettings] = Field(
        default_factory=lambda: [
            LineSettings(name="navigator", kind="navigator", number="95500", lang="zh"),
            LineSettings(name="navigator-en", kind="navigator", number="95501", lang="en"),
            LineSettings(name="assisted", kind="assisted", number="95588", lang="zh", skill_group="cards"),
        ]
    )


class RecordingSettings(BaseModel):
    """Call recordings: stereo, customer left, agent/bot right."""

    directory: Path = Path("var/recordings")
    format: Literal["WAV", "FLAC"] = "WAV"
    retention_days: int = 180
    """Recordings older than this are deleted by the retention job (days); 0 keeps them forever."""


class SupervisorSettings(BaseModel):
    """The process supervisor behind ``voxdesk serve``."""

    restart_backoff_initial_s: float = 0.5
    restart_backoff_max_s: float = 30.0
    stable_after_s: float = 60.0
    """A child that ran this long (s) before dying restarts with the initial backoff again."""
    shutdown_grace_s: float = 10.0


class KnowledgeSettings(BaseModel):
    """Question library, scripts, embeddings and indexes (``knowledge/``)."""

    embedder: Literal["e5", "minilm"] = "e5"
    """Embedding backend of the indexes: ``e5`` (multilingual-e5-small, zh+en) or ``minilm`` (English only)."""
    index_dir: Path = Path("var/indexes")
    """Where the FAISS indexes are persisted (one folder per index, with a manifest and version)."""
    lexical_weight: float = Field(default=0.0, ge=0.0, le=5.0)
    """Weight of the BM25 score (scaled to 0–1 per query) added to the cosine similarity; 0 (default) turns hybrid
    off: on the demo library it lowered recall@1 from 47.6% to 36.7% at 0.3 (docs/knowledge.md)."""
    bank_names: list[str] = Field(default_factory=lambda: ["沃思德演示银行", "Voxdesk Demo Bank"])
    """Names by which outbound scripts must identify the bank (any one of them)."""


class AssistLlmSettings(BaseModel):
    """An OpenAI-compatible chat endpoint the bank runs itself, used only to draft post-call summaries."""

    base_url: str
    """e.g. ``http://10.0.0.20:8000/v1`` (a self-hosted server; nothing leaves the bank)."""
    model: str
    api_key: SecretStr = SecretStr("none")
    timeout_s: float = 20.0


class AssistSettings(BaseModel):
    """The live assist panel (``agent/assist/``): suggestions, compliance alerts, summaries."""

    lines: list[str] | None = None
    """Line names whose calls are assisted; unset = every ``assisted`` line."""
    agent_workers: int = Field(default=1, ge=0, le=8)
    """Agent processes started by ``voxdesk serve``; calls are shared out among them by call id."""
    min_confidence: float = Field(default=0.45, ge=0.0, le=1.0)
    """Intent confidence below which no suggestion is shown."""
    max_visible: int = Field(default=3, ge=1, le=10)
    """Suggestion cards kept on the panel."""
    repeat_after_ms: int = Field(default=120_000, ge=0)
    """The same question is suggested again only after this much call time (ms)."""
    max_per_minute: int = Field(default=6, ge=1)
    """New cards per minute of call time before only better-ranked ones get through."""
    prefetch: bool = True
    """Classify customer partials ahead of the final (lower suggestion latency, more CPU)."""
    rules_file: Path | None = None
    """The bank's compliance phrase rules (YAML) merged over the shipped ones (docs/assist.md)."""
    summary_llm: AssistLlmSettings | None = None
    """Optional: draft post-call summaries with this chat model; the extractive summary is the fallback."""


class NavigatorSettings(BaseModel):
    """The voice navigator (``agent/navigator/``, docs/navigator.md): dialogs, voices, routing to agents."""

    lines: list[str] | None = None
    """Line names whose calls the navigator answers; unset = every ``navigator`` line."""
    voices: dict[Literal["zh", "en"], Path] = Field(default_factory=dict)
    """A Piper voice (``.onnx``, with its ``.onnx.json`` beside it) per language; ``en`` defaults to the bundled
    en_US-joe-medium voice. No Chinese voice ships: a bank supplies one by path."""
    prompt_dirs: dict[Literal["zh", "en"], Path] = Field(default_factory=dict)
    """Pre-recorded prompts (``<prompt key>.wav``) per language, spoken where a language has no voice."""
    prompt_cache_dir: Path = Path("var/prompt-cache")
    """Rendered fixed prompts and approved answer scripts, per voice and rate."""
    flows_dir: Path | None = None
    """A folder of the bank's own flow YAML files, loaded after (and overriding) the shipped flows."""
    skill_groups: dict[str, str] = Field(default_factory=dict)
    """SIP URI of each skill group's agents (a softphone, or a Kamailio group address), for transfers."""
    default_transfer_uri: str | None = None
    """Where a transfer goes when its skill group has no URI; unset: the caller is told no agent is free."""
    backchannels: dict[Literal["zh", "en"], list[str]] = Field(
        default_factory=lambda: {  # type: ignore[arg-type]
            "zh": ["嗯", "嗯嗯", "嗯哼", "哦", "噢", "啊", "唔", "好", "好好"],
            "en": ["uh-huh", "uh huh", "mm-hmm", "mhm", "mm", "hmm", "ok", "okay", "right", "i see", "oh"],
        }
    )
    """Short replies said while the bot speaks that do not interrupt it (the paused prompt resumes); said after
    the prompt ended they are ordinary answers. Matched on the whole utterance, case and punctuation ignored."""
    resume_after_ms: int = Field(default=1_200, ge=200)
    """A paused prompt resumes when no utterance follows the pause within this (a click, a cough), ms."""
    pool_threads: int = Field(default=1, ge=1, le=4)
    """Threads synthesising speech in an agent process (Piper uses one core each)."""


class DemoSettings(BaseModel):
    """The fictional demo bank loaded on first run."""

    load_on_empty: bool = True
    seed: int = 20261122
    customers: int = 200


class Settings(BaseSettings):
    """Root of all settings; one section per package or concern."""

    model_config = SettingsConfigDict(
        env_prefix="VOXDESK_",
        env_nested_delimiter="_",
        env_nested_max_split=1,
        extra="forbid",
    )

    production: bool = False
    var_dir: Path = Path("var")
    """Runtime state: SQLite database, sockets, recordings, model cache (relative to the working directory)."""
    shared_data: Path = Path("../shared/data")
    """Root of the real test and benchmark data (speech, intents, …)."""
    database: DatabaseSettings = DatabaseSettings()
    bus: BusSettings = BusSettings()
    server: ServerSettings = ServerSettings()
    auth: AuthSettings = AuthSettings()
    logging: LoggingSettings = LoggingSettings()
    models: ModelSettings = ModelSettings()
    asr: AsrSettings = AsrSettings()
    telephony: TelephonySettings = TelephonySettings()
    recording: RecordingSettings = RecordingSettings()
    supervisor: SupervisorSettings = SupervisorSettings()
    knowledge: KnowledgeSettings = KnowledgeSettings()
    assist: AssistSettings = AssistSettings()
    navigator: NavigatorSettings = NavigatorSettings()
    qa: QaSettings = QaSettings()
    dialer: DialerSettings = DialerSettings()
    demo: DemoSettings = DemoSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls))

    def check_production(self) -> None:
        """Refuse unsafe settings when ``production`` is on; raises :class:`ConfigError`."""
        problems: list[str] = []
        if (
            self.auth.session_secret.get_secret_value() == DEFAULT_SECRET
            or len(self.auth.session_secret.get_secret_value()) < 32
        ):
            problems.append("auth.session_secret is the default or shorter than 32 characters")
        if self.database.url.startswith("sqlite"):
            problems.append("database.url is SQLite; production needs PostgreSQL")
        if not self.auth.cookie_secure:
            problems.append("auth.cookie_secure is off; production serves over HTTPS")
        if problems:
            raise ConfigError("refusing to start in production mode: " + "; ".join(problems))


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Build the settings root once, from ``config_file`` (TOML), the environment and ``overrides``.

    Without ``config_file``, ``$VOXDESK_CONFIG`` or ``./voxdesk.toml`` is read when it exists.
    """
    path = config_file
    if path is None and os.environ.get("VOXDESK_CONFIG"):
        path = Path(os.environ["VOXDESK_CONFIG"])
    if path is None and Path("voxdesk.toml").is_file():
        path = Path("voxdesk.toml")
    if path is not None and not path.is_file():
        raise ConfigError("config file not found", path=str(path))
    if path is None:
        return Settings(**overrides)

    class _FileSettings(Settings):
        model_config = SettingsConfigDict(toml_file=path)

    return _FileSettings(**overrides)
