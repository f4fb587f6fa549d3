"""Clustering of speaker embeddings for diarization: centroid-linkage agglomerative clustering on cosine
similarity with an automatic stop (or a given number of speakers), removal of clusters with too little speech,
a few weighted spherical k-means refinements, and the per-chunk constrained assignment of local speakers to
global speakers (two local speakers of one chunk never get the same global speaker).

Pure numpy/scipy on the calling thread. An embedding here is one local speaker of one 10 s chunk: a row of
``X`` (any scale; rows are L2-normalised inside) with a weight (seconds of clean speech it was computed from).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["agglomerate", "assign_chunks", "cluster_embeddings", "normalise_rows"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


def normalise_rows(x: npt.NDArray[np.floating]) -> FloatArray:
    """Rows scaled to unit L2 norm (zero rows stay zero)."""
    x = np.asarray(x, dtype=np.float64)
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    out: FloatArray = np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)
    return out


def agglomerate(
    x: npt.NDArray[np.floating],
    weights: npt.NDArray[np.floating],
    *,
    stop_similarity: float,
    num_clusters: int | None = None,
    max_clusters: int | None = None,
) -> IntArray:
    """Centroid-linkage AHC: repeatedly merge the two clusters whose weighted mean directions are most similar
    (cosine). Stops at ``num_clusters`` clusters when given; otherwise when no pair is at least
    ``stop_similarity`` similar and at most ``max_clusters`` remain. Returns labels 0…k-1 in order of each
    cluster's first member. O(n²) memory, about O(n²·d) time."""
    units = normalise_rows(x)
    n = len(units)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    sums = units * np.asarray(weights, dtype=np.float64)[:, None]
    centroids = normalise_rows(sums)
    sim = centroids @ centroids.T
    np.fill_diagonal(sim, -np.inf)
    alive = np.ones(n, dtype=bool)
    parent = np.arange(n)
    best = sim.max(axis=1)
    best_at = sim.argmax(axis=1)
    target = num_clusters if num_clusters is not None else 1
    while alive.sum() > max(1, target):
        masked = np.where(alive, best, -np.inf)
        i = int(np.argmax(masked))
        j = int(best_at[i])
        few_enough = max_clusters is None or alive.sum() <= max_clusters
        if num_clusters is None and masked[i] < stop_similarity and few_enough:
            break
        # merge j into i
        alive[j] = False
        parent[parent == j] = i
        sums[i] += sums[j]
        centroids[i] = normalise_rows(sums[i : i + 1])[0]
        row = centroids @ centroids[i]
        row[~alive] = -np.inf
        row[i] = -np.inf
        sim[i, :] = row
        sim[:, i] = row
        sim[j, :] = -np.inf
        sim[:, j] = -np.inf
        stale = np.nonzero(alive & ((best_at == i) | (best_at == j)))[0]
        for r in np.concatenate([stale, [i]]):
            best[r] = sim[r].max()
            best_at[r] = int(sim[r].argmax())
        better = alive & (row > best)
        best[better] = row[better]
        best_at[better] = i
    _, labels = np.unique(parent, return_inverse=True)
    return _first_order(labels.astype(np.int64))


def _first_order(labels: IntArray) -> IntArray:
    """Relabel so clusters are numbered in order of their first member."""
    order: dict[int, int] = {}
    for value in labels.tolist():
        order.setdefault(value, len(order))
    return np.asarray([order[v] for v in labels.tolist()], dtype=np.int64)


def _centroids(units: FloatArray, weights: FloatArray, labels: IntArray, k: int) -> FloatArray:
    sums = np.zeros((k, units.shape[1]))
    np.add.at(sums, labels, units * weights[:, None])
    return normalise_rows(sums)


def cluster_embeddings(
    x: npt.NDArray[np.floating],
    weights: npt.NDArray[np.floating],
    *,
    num_speakers: int | None = None,
    max_speakers: int = 4,
    stop_similarity: float = 0.7,
    min_speaker_s: float = 2.0,
    refine_iterations: int = 5,
) -> FloatArray:
    """Speaker centroids (unit rows, ``(k, d)``) of embeddings ``x`` weighted by seconds of speech.

    With ``num_speakers`` the result has exactly ``min(num_speakers, len(x))`` rows. Without it, AHC stops at
    ``stop_similarity`` (at most ``max_speakers``), and clusters holding less than ``min_speaker_s`` seconds of
    speech are dissolved into the others (unless none is that large). The centroids are then refined by weighted
    spherical k-means.
    """
    units = normalise_rows(x)
    w = np.asarray(weights, dtype=np.float64)
    if len(units) == 0:
        return np.zeros((0, units.shape[1] if units.ndim == 2 else 0))
    if num_speakers is not None:
        labels = agglomerate(units, w, stop_similarity=stop_similarity, num_clusters=min(num_speakers, len(units)))
        k = int(labels.max()) + 1
        centroids = _centroids(units, w, labels, k)
    else:
        labels = agglomerate(units, w, stop_similarity=stop_similarity, max_clusters=max_speakers)
        k = int(labels.max()) + 1
        mass = np.bincount(labels, weights=w, minlength=k)
        keep = mass >= min(min_speaker_s, float(mass.max()))
        centroids = _centroids(units, w, labels, k)[keep]
    for _ in range(refine_iterations):
        nearest = np.argmax(units @ centroids.T, axis=1)
        sizes = np.bincount(nearest, weights=w, minlength=len(centroids))
        if num_speakers is None:
            centroids = centroids[sizes > 0]
            nearest = np.argmax(units @ centroids.T, axis=1)
        updated = _centroids(units, w, nearest, len(centroids))
        empty = np.linalg.norm(updated, axis=1) == 0
        updated[empty] = centroids[empty]
        if np.allclose(updated, centroids):
            break
        centroids = updated
    return centroids


def assign_chunks(embeddings: npt.NDArray[np.floating], centroids: FloatArray) -> IntArray:
    """Global speaker of every local speaker: ``embeddings`` is ``(chunks, local, d)`` with NaN rows for local
    speakers without an embedding (these get -1). Within a chunk the assignment maximises the summed cosine
    similarity under the constraint that no two local speakers share a global one (Hungarian algorithm); a local
    speaker left over when a chunk has more local speakers than there are centroids gets -1."""
    from scipy.optimize import linear_sum_assignment

    chunks, local, _ = embeddings.shape
    out = np.full((chunks, local), -1, dtype=np.int64)
    if len(centroids) == 0:
        return out
    valid = ~np.isnan(embeddings[..., 0])
    units = normalise_rows(np.nan_to_num(embeddings))
    for c in range(chunks):
        rows = np.nonzero(valid[c])[0]
        if len(rows) == 0:
            continue
        scores = units[c, rows] @ centroids.T
        picked, cols = linear_sum_assignment(-scores)
        out[c, rows[picked]] = cols
    return out
