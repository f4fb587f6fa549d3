"""Hot topics: clusters of customer utterances, each labelled by its top terms.

Utterances are tokenised like the knowledge search (jieba words for Chinese runs, lower-cased words for the rest,
stop words and conversational fillers dropped), weighted with TF-IDF (scikit-learn, sublinear term frequency, L2
rows) and clustered with k-means for every ``k`` of a small range; the ``k`` with the best silhouette (cosine)
wins. Deterministic: fixed seeds, inputs in the caller's order. Utterances with fewer than two content tokens
(``"yes"``, ``"ok thanks"``) join no topic.

Pure and CPU-bound (about a second for a few thousand utterances, mostly jieba's first load); any thread.
scikit-learn and jieba are imported on first use.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from knowledge.lexical import tokenize

__all__ = ["TopicCluster", "cluster_topics", "topic_tokens"]

_FILLERS_EN = (
    "yes yeah yep no ok okay hi hello hey thanks thank bye goodbye sure right well um uh so just like will it's that's "
    "don't i've i'll not but if me us get got has have was were been also really very"
)
_FILLERS_ZH = (
    "好 好的 嗯 对 对的 是的 谢谢 那 这个 那个 就 还 也 都 吧 哦 喂 麻烦 一个 "
    "什么 没有 不是 知道 现在 多少 怎么办 为什么 哪里 能不能 可不可以"
)
_FILLERS = frozenset(_FILLERS_EN.split()) | frozenset(_FILLERS_ZH.split())
_TERMS_PER_LABEL = 3


@dataclass(frozen=True)
class TopicCluster:
    """One topic: ``label`` (its top terms joined), ``terms`` (top terms, strongest first), ``size`` (utterances)
    and up to a few ``examples`` (the utterances nearest its centre)."""

    topic_id: int
    label: str
    terms: tuple[str, ...]
    size: int
    examples: tuple[str, ...]


def topic_tokens(text: str) -> list[str]:
    """Content tokens of one utterance (knowledge tokens minus fillers, single latin letters dropped)."""
    return [t for t in tokenize(text) if t not in _FILLERS and not (len(t) == 1 and t.isascii())]


def cluster_topics(
    texts: Sequence[str], *, k_range: tuple[int, int] = (2, 8), examples: int = 3, seed: int = 0
) -> tuple[list[TopicCluster], list[int | None]]:
    """Cluster ``texts``; returns the clusters (largest first, ``topic_id`` = rank) and each text's topic id
    (``None`` for texts too short to cluster). Fewer than four usable texts form one topic."""
    tokens = [topic_tokens(t) for t in texts]
    usable = [i for i, toks in enumerate(tokens) if len(toks) >= 2]
    assigned: list[int | None] = [None] * len(texts)
    if not usable:
        return [], assigned
    import numpy as np
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectorizer = TfidfVectorizer(
        analyzer=lambda doc: doc, sublinear_tf=True, min_df=2 if len(usable) >= 20 else 1, max_features=5000
    )
    try:
        matrix = vectorizer.fit_transform([tokens[i] for i in usable])
    except ValueError:  # every term below min_df
        return [], assigned
    vocabulary = np.array(vectorizer.get_feature_names_out())
    labels, centres = _best_kmeans(matrix, k_range, seed)
    clusters: list[tuple[int, list[int], Any]] = []
    for c in range(centres.shape[0]):
        members = [row for row in range(len(usable)) if labels[row] == c]
        if members:
            clusters.append((c, members, centres[c]))
    clusters.sort(key=lambda item: (-len(item[1]), min(item[1])))
    out: list[TopicCluster] = []
    for rank, (_, members, centre) in enumerate(clusters):
        order = np.argsort(-centre, kind="stable")
        terms = tuple(str(vocabulary[j]) for j in order[:_TERMS_PER_LABEL] if centre[j] > 0)
        sims = matrix[members] @ centre
        nearest = [members[j] for j in np.argsort(-np.asarray(sims).ravel(), kind="stable")]
        picked: list[str] = []
        for row in nearest:
            text = texts[usable[row]].strip()
            if text not in picked:
                picked.append(text)
            if len(picked) >= examples:
                break
        out.append(TopicCluster(rank, " / ".join(terms) or "—", terms, len(members), tuple(picked)))
        for row in members:
            assigned[usable[row]] = rank
    return out, assigned


def _best_kmeans(matrix: Any, k_range: tuple[int, int], seed: int) -> tuple[Any, Any]:
    """K-means labels and centres for the ``k`` in ``k_range`` with the best cosine silhouette."""
    import numpy as np
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score

    n = matrix.shape[0]
    distinct = len({tuple(sorted(row.indices)) for row in matrix})
    lo, hi = max(2, k_range[0]), min(k_range[1], n - 1, distinct)
    if n < 4 or hi < lo:
        centre = np.asarray(matrix.mean(axis=0)).ravel()
        return np.zeros(n, dtype=int), centre[None, :]
    best: tuple[float, Any, Any] | None = None
    for k in range(lo, hi + 1):
        model = KMeans(n_clusters=k, random_state=seed, n_init=10).fit(matrix)
        if len(set(model.labels_)) < 2:
            continue
        score = float(
            silhouette_score(matrix, model.labels_, metric="cosine", sample_size=min(n, 2000), random_state=seed)
        )
        if best is None or score > best[0] + 1e-9:
            best = (score, model.labels_, model.cluster_centers_)
    if best is None:
        centre = np.asarray(matrix.mean(axis=0)).ravel()
        return np.zeros(n, dtype=int), centre[None, :]
    return best[1], best[2]
