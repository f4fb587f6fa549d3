"""The embedding interface's helpers and its test double."""

from __future__ import annotations

import numpy as np
import pytest

from knowledge.embeddings import normalise_rows
from knowledge.testing import HashingEmbedder

pytestmark = pytest.mark.unit


def test_normalise_rows_gives_unit_float32_rows_and_keeps_zero_rows() -> None:
    out = normalise_rows(np.array([[3.0, 4.0], [0.0, 0.0]]))
    assert out.dtype == np.float32 and out.flags["C_CONTIGUOUS"]
    assert np.allclose(out, [[0.6, 0.8], [0.0, 0.0]])
    assert normalise_rows(np.array([1.0, 0.0])).shape == (1, 2)


def test_hashing_embedder_is_deterministic_and_similar_for_shared_words() -> None:
    emb = HashingEmbedder(dim=128)
    a, b, c = emb.embed_queries(["lost my credit card", "I lost my card", "exchange rate for dollars"])
    assert np.allclose(emb.embed_passages(["lost my credit card"])[0], a)
    assert float(a @ b) > float(a @ c)
    zh = emb.embed_queries(["信用卡丢了", "我的信用卡丢了怎么办"])
    assert float(zh[0] @ zh[1]) > 0.5
    assert emb.embed_queries([]).shape == (0, 128)
    assert np.allclose(np.linalg.norm(emb.embed_queries(["x y z", "!!"]), axis=1), [1.0, 0.0])
