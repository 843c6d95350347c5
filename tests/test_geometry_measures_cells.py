"""Quantizer cell measures against plain float64 references, hand-computed values and invariants."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from latentgeo.geometry.measures import cells
from latentgeo.geometry.measures.compute import compute_measures
from latentgeo.geometry.measures import quantizers as qz


# ---------------------------------------------------------------- plain references (float64)
def ref_skew(e):
    e = np.asarray(e, dtype=np.float64)
    dev = e - e.mean()
    return (dev**3).mean() / (dev**2).mean() ** 1.5


def ref_counts(codes, k):
    counts = np.zeros((codes.shape[1], k), dtype=np.int64)
    for i in range(codes.shape[0]):
        for j in range(codes.shape[1]):
            counts[j, codes[i, j]] += 1
    return counts


def ref_lloyd(counts, m):
    counts = np.asarray(counts, dtype=np.float64).ravel()
    v = ((counts - counts.mean()) ** 2).sum() / len(counts)
    return (m + v / m - 1) / m


def ref_point_counts(counts):
    m, k = counts.shape
    variances, kls = [], []
    for j in range(m):
        h = counts[j] / counts[j].sum()
        odds = [x / (1 - x) * (k - 1) for x in h]
        mu = sum(odds) / k
        variances.append(sum((o - mu) ** 2 for o in odds) / k)
        kls.append(sum(x * np.log(x * k) for x in h if x > 0))
    return np.mean(variances), np.mean(kls)


def ref_centroids(centroids):
    """Squared nearest-other-centroid distances per codebook, pooled, over their max; variance."""
    values = []
    for book in centroids:
        dist = cdist(book, book, "sqeuclidean")
        np.fill_diagonal(dist, np.inf)
        values.extend(dist.min(axis=1))
    values = np.array(values) / max(values)
    return ((values - values.mean()) ** 2).mean()


@pytest.fixture(scope="module")
def sample():
    rng = np.random.default_rng(3)
    scales = rng.gamma(2.0, 1.0, size=16)
    return (rng.normal(size=(700, 16)) * scales + rng.normal(size=16)).astype(np.float32)


# ---------------------------------------------------------------- quantizers
@pytest.mark.parametrize("kind", ["pq", "lsq", "rq"])
def test_encode_sample_matches_plain_decoding(sample, kind):
    m, nbits = 4, 4
    q = qz.make_quantizer(kind, sample.shape[1], m, nbits, seed=0)
    qz.train_quantizer(q, sample, None)
    enc = qz.encode_sample(q, kind, sample, m, nbits)
    assert enc.codes.shape == (len(sample), m) and enc.codes.min() >= 0 and enc.codes.max() < 16
    C = enc.centroids
    if kind == "pq":  # concatenated sub-vectors; the code is the nearest sub-centroid
        recon = np.concatenate([C[j, enc.codes[:, j]] for j in range(m)], axis=1)
        dsub = sample.shape[1] // m
        for j in range(m):
            sub = sample[:, j * dsub : (j + 1) * dsub].astype(np.float64)
            np.testing.assert_array_equal(cdist(sub, C[j]).argmin(axis=1), enc.codes[:, j])
    else:  # additive: the sum of one vector from every codebook
        recon = sum(C[j, enc.codes[:, j]] for j in range(m))
    sq = ((sample.astype(np.float64) - recon) ** 2).sum(axis=1)
    np.testing.assert_allclose(enc.sq_errors, sq, rtol=1e-5, atol=1e-6)


def test_train_indices_seeded_sorted_and_all():
    assert qz.train_indices(100, "all", 0) is None
    assert qz.train_indices(100, 100, 0) is None
    a, b = qz.train_indices(1000, 300, 5), qz.train_indices(1000, 300, 5)
    np.testing.assert_array_equal(a, b)
    assert len(np.unique(a)) == 300 and np.all(np.diff(a) > 0)
    assert not np.array_equal(a, qz.train_indices(1000, 300, 6))


# ---------------------------------------------------------------- reconstruction
def test_reconstruction_measures_match_reference():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(500, 8))
    xhat = x + rng.gamma(1.0, 0.2, size=(500, 1)) * rng.normal(size=(500, 8))
    sq = ((x - xhat) ** 2).sum(axis=1)
    got = cells.reconstruction_measures(sq, (x**2).sum())
    e = np.sqrt(sq)
    assert got["reconstruction_error"] == pytest.approx(
        ((x - xhat) ** 2).sum() / (x**2).sum(), rel=1e-12
    )
    q25, q75 = np.percentile(e, [25, 75])
    assert got["reconstruction_iqr"] == pytest.approx((q75 - q25) / e.max(), rel=1e-12)
    assert got["reconstruction_skew"] == pytest.approx(ref_skew(e), rel=1e-9)
    assert got["under_mu"] == sum(x < e.mean() for x in e) / len(e)
    assert got["under_mu2"] == sum(x < e.mean() / 2 for x in e) / len(e)


def test_reconstruction_exact_gives_zeros():
    got = cells.reconstruction_measures(np.zeros(10), 5.0)
    assert got == {
        "reconstruction_error": 0.0,
        "reconstruction_iqr": 0.0,
        "reconstruction_skew": 0.0,
        "under_mu": 0.0,
        "under_mu2": 0.0,
    }


# ---------------------------------------------------------------- counts, patchiness
def test_code_histograms_match_loop():
    rng = np.random.default_rng(1)
    codes = rng.integers(0, 16, size=(300, 3))
    np.testing.assert_array_equal(cells.code_histograms(codes, 16), ref_counts(codes, 16))


def test_patchiness_paper_hand_computed():
    # M = 2 codebooks, k = 4 (nbits = 2), N = 4 vectors.
    codes = np.array([[0, 1], [0, 1], [1, 1], [3, 2]])
    # Paper: np.histogram(bins=4) spans each codebook's observed min..max.
    #   codebook 0, codes 0,0,1,3: range [0, 3], edges 0, .75, 1.5, 2.25, 3 -> counts [2, 1, 0, 1]
    #   codebook 1, codes 1,1,1,2: range [1, 2], edges 1, 1.25, 1.5, 1.75, 2 -> counts [3, 0, 0, 1]
    #   concatenated [2, 1, 0, 1, 3, 0, 0, 1]: sum 8, m = 8 / k = 2; mean 1,
    #   V = (1 + 0 + 1 + 0 + 4 + 1 + 1 + 0) / 8 = 1; PP = (m + V/m - 1) / m = (2 + 0.5 - 1) / 2 = 0.75
    np.testing.assert_array_equal(cells.paper_histograms(codes, 4), [[2, 1, 0, 1], [3, 0, 0, 1]])
    assert cells.patchiness_paper(codes, 4) == 0.75
    # Corrected: bins 0..3 -> [2, 1, 0, 1] and [0, 3, 1, 0]; m = N/k = 1;
    #   V = (1 + 0 + 1 + 0 + 1 + 4 + 0 + 1) / 8 = 1; PP = (1 + 1 - 1) / 1 = 1.0
    assert cells.patchiness_corrected(cells.code_histograms(codes, 4)) == 1.0


def test_patchiness_paper_single_code_codebook_matches_numpy():
    # Only code 5 in codebook 1: NumPy uses range [4.5, 5.5], so the count lands in the middle bin.
    codes = np.array([[0, 5], [3, 5], [7, 5], [7, 5]])
    hist = cells.paper_histograms(codes, 8)
    np.testing.assert_array_equal(hist[1], np.histogram([5, 5, 5, 5], bins=8)[0])
    assert cells.patchiness_paper(codes, 8) == pytest.approx(
        ref_lloyd(hist, hist.sum() / 8), rel=1e-15
    )


def test_patchiness_near_one_for_uniform_random_codes():
    rng = np.random.default_rng(2)
    codes = rng.integers(0, 256, size=(200_000, 4))
    assert cells.patchiness_corrected(cells.code_histograms(codes, 256)) == pytest.approx(
        1.0, abs=1e-3
    )
    assert cells.patchiness_paper(codes, 256) == pytest.approx(1.0, abs=1e-3)


def test_patchiness_perfectly_even_histogram():
    k, per_cell, m_books = 16, 5, 3
    rng = np.random.default_rng(4)
    codes = np.stack(
        [rng.permutation(np.repeat(np.arange(k), per_cell)) for _ in range(m_books)], axis=1
    )
    hist = cells.code_histograms(codes, k)
    assert cells.patchiness_corrected(hist) == pytest.approx(1 - 1 / per_cell, rel=1e-14)
    # the paper's m is Σcounts/k = M × per_cell
    assert cells.patchiness_paper(codes, k) == pytest.approx(
        1 - 1 / (m_books * per_cell), rel=1e-14
    )


def test_patchiness_above_one_when_clumped():
    rng = np.random.default_rng(5)
    codes = np.where(rng.random((4000, 4)) < 0.8, 3, rng.integers(0, 64, size=(4000, 4)))
    assert cells.patchiness_corrected(cells.code_histograms(codes, 64)) > 1.5
    assert cells.patchiness_paper(codes, 64) > 1.0


def test_lloyd_matches_reference():
    counts = np.array([[4, 0, 2, 9], [1, 1, 5, 3]])
    assert cells.lloyd_patchiness(counts, 3.0) == pytest.approx(ref_lloyd(counts, 3.0), rel=1e-14)


def test_point_count_measures_match_reference():
    rng = np.random.default_rng(6)
    codes = np.minimum(rng.geometric(0.08, size=(3000, 4)) - 1, 31)  # skewed use, some empty cells
    hist = cells.code_histograms(codes, 32)
    variance, kl = ref_point_counts(hist)
    assert cells.point_count_variance(hist) == pytest.approx(variance, rel=1e-12)
    assert cells.point_count_kl(hist) == pytest.approx(kl, rel=1e-12)
    even = np.full((2, 32), 10)
    assert cells.point_count_variance(even) == 0.0 and cells.point_count_kl(even) == pytest.approx(
        0.0, abs=1e-15
    )


def test_centroids_match_reference():
    rng = np.random.default_rng(7)
    centroids = rng.normal(size=(3, 40, 5))
    assert cells.centroid_nn_variance(centroids) == pytest.approx(
        ref_centroids(centroids), rel=1e-10
    )
    nn = cells.nearest_other_sq_distances(centroids[0], chunk=7)  # chunks give the same distances
    d = cdist(centroids[0], centroids[0], "sqeuclidean")
    np.fill_diagonal(d, np.inf)
    np.testing.assert_allclose(nn, d.min(axis=1), rtol=1e-10)
    twin = np.concatenate([centroids[:1, :3], centroids[:1, :1]], axis=1)  # a duplicate centroid
    assert cells.nearest_other_sq_distances(twin[0])[[0, 3]].tolist() == [0.0, 0.0]


# ---------------------------------------------------------------- invariants on real quantizers
def test_cell_measures_unchanged_by_scaling(sample):
    # PQ and LSQ are scale-equivariant (same codes for c·X), so every relative measure is unchanged.
    # (RQ is not: its beam search compares absolute distances and may pick other codes.)
    a = compute_measures(sample, quantizers=("pq", "lsq"), nbits=4, progress=False)
    b = compute_measures(
        sample * np.float32(3.7), quantizers=("pq", "lsq"), nbits=4, progress=False
    )
    for kind in ("pq", "lsq"):
        for name, value in a[kind].items():
            assert b[kind][name] == pytest.approx(value, rel=1e-5), (kind, name)
