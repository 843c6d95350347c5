"""Our measures against plain reference implementations of the geometry paper's own code.

The references below are written for these tests, in the spirit of the paper's
``VM_transfer/sample_build_and_metrics.py`` (``VRM``, ``EEE``, class ``quantization``) and
``util/run_reconstruction_skew.py`` (``under_mu``), quirks included: sklearn's PCA and ``auc`` for
EEE, scipy's ``differential_entropy`` at its defaults for VRM, FAISS's ``IndexFlatL2`` for the
centroids, per-cell lists filled through ``c_list[c - 1]`` and deduplicated with ``np.unique``,
``np.histogram`` over the observed code range for patchiness. They are NOT the project's code and
share none of it. The quantizers are trained here exactly as the paper did (FAISS's untouched
defaults), ours through ``compute_measures(seed=1234)``; the tests check that both end with the
same codes before comparing the measures.

Two departures, both labelled: the reference VRM's random standard-normal draw is replaced by its
expectation d (or made seeded), and codes are unpacked bit by bit (the paper read packed bytes,
which is the same thing at its nbits = 8; 6 bits keep LSQ training to a second or two).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import differential_entropy, skew
from sklearn.decomposition import PCA
from sklearn.metrics import auc

from latentgeo.geometry.measures import cells, spread
from latentgeo.geometry.measures.compute import measure_space
from latentgeo.geometry.measures import quantizers as qz

M, NBITS = 4, 6
TOL = 1e-3  # the paper computes in float32 (its samples and FAISS are float32), we in float64


# ---------------------------------------------------------------- references (the paper's formulas)
def paper_vrm(embeddings, reference="expectation", seed=0):
    """The paper's VRM; its random N(0, I_d) draw replaced by d (its expectation) or seeded."""
    n, d = len(embeddings), len(embeddings[0])
    pc = PCA()
    tx = pc.fit_transform(embeddings)
    if reference == "expectation":
        ev = d
    else:
        draw = np.random.default_rng(seed).standard_normal((n, d))
        ev = sum(PCA().fit(draw).explained_variance_)
    tx *= np.sqrt(ev / sum(pc.explained_variance_))
    m = np.log(np.sqrt(2 * np.pi * math.e))
    with np.errstate(divide="ignore"):
        ent = differential_entropy(tx)
    r = np.exp(ent) / np.exp(m)
    return float(np.sum((1 - r) ** 2) / d)  # the paper rounds to 4 decimals


def paper_eee(embeddings):
    pc = PCA()
    pc.fit(embeddings)
    num_pc = pc.n_components_
    eigensum = np.cumsum(pc.explained_variance_)
    ref = np.cumsum([eigensum[-1] / num_pc] * num_pc)
    area = auc(range(num_pc), eigensum - ref)
    return float(area / ((eigensum[-1] * num_pc) / 2))


def unpack_codes(packed, m, nbits):
    """FAISS's bit-packed codes, least significant bit first, as (n, m) integers."""
    bits = np.unpackbits(packed, axis=1, bitorder="little")[:, : m * nbits].reshape(-1, m, nbits)
    return (bits.astype(np.int64) << np.arange(nbits)).sum(axis=2)


class PaperQuantization:
    """The paper's ``quantization`` class (the parts the measures use)."""

    def __init__(self, data, quantizer):
        import faiss

        self.quantizer, self.data, self.n = quantizer, data, len(data)
        if hasattr(quantizer, "centroids"):
            c = faiss.vector_float_to_array(quantizer.centroids)
            self.M, self.k, self.d = quantizer.M, quantizer.ksub, quantizer.dsub
        else:
            c = faiss.vector_float_to_array(quantizer.codebooks)
            self.M, self.k, self.d = quantizer.M, quantizer.K, quantizer.d
        self.c = c.reshape(self.M, self.k, self.d)
        self.packed = quantizer.compute_codes(data)
        self.codes = unpack_codes(self.packed, self.M, int(np.log2(self.k)))
        self.trans = self.codes.T
        self.all_c = []
        for i in range(self.M):
            c_list = [[] for _ in range(self.k)]
            for idx, v in enumerate(data):
                c = self.trans[i][idx]
                c_list[c - 1].append(v)  # the paper's relabelling: code 0 lands in the last list
            self.all_c.append([np.unique(j, axis=0) for j in c_list])

    def errors(self):
        recon = self.quantizer.decode(self.packed)
        return np.linalg.norm(self.data - recon, axis=1), recon

    def avg_reconstruction_error(self):
        _, recon = self.errors()
        return ((self.data - recon) ** 2).sum() / (self.data**2).sum()

    def reconstruction_iqr(self):
        e, _ = self.errors()
        e = e / np.max(e)
        q75, q25 = np.percentile(e, [75, 25])
        return q75 - q25

    def reconstruction_skew(self):
        return skew(self.errors()[0])

    def under_mu(self):  # util/run_reconstruction_skew.py
        e, _ = self.errors()
        mu = np.mean(e)
        return (np.sum([1 for i in e if i < mu]) / len(e),
                np.sum([1 for i in e if i < mu / 2]) / len(e))

    def compare_centroids(self):
        import faiss

        nn = []
        for i in range(self.M):
            array_c = np.array(self.c[i]).astype("float32")
            index = faiss.IndexFlatL2(self.d)
            index.add(array_c)
            D, _ = index.search(array_c, 2)
            nn.extend([D[j, 1] for j in range(self.k)])
        nn = np.array(nn)
        return nn / np.max(nn)

    def histograms(self):
        return [c for i in range(self.M) for c in np.histogram(self.trans[i], bins=self.k)[0]]

    def compare_point_dist(self):
        all_eee = []
        for i in range(self.M):
            for j in self.all_c[i]:
                if len(j) > 1:
                    try:
                        all_eee.append(paper_eee(j))
                    except Exception:  # the paper skips cells whose EEE raises
                        pass
        return all_eee

    def patchiness(self, counts):
        m = sum(counts) / self.k
        v = np.var(counts)
        return (m + (v / m - 1)) / m


def paper_metric_run(data):
    """The paper's metric_run for one sample, quantizers at FAISS's untouched defaults."""
    import faiss

    d = data.shape[1]
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)  # ours trains on one thread; the same codebooks, far faster here
    try:
        pq = faiss.ProductQuantizer(d, M, NBITS)
        pq.train(data)
        aq = faiss.LocalSearchQuantizer(d, M, NBITS)
        aq.train(data)
    finally:
        faiss.omp_set_num_threads(before)
    out = {}
    for name, q in (("pq", pq), ("lsq", aq)):
        quant = PaperQuantization(data, q)
        under, under2 = quant.under_mu()
        out[name] = {
            "codes": quant.codes,
            "reconstruction_error": quant.avg_reconstruction_error(),
            "reconstruction_iqr": quant.reconstruction_iqr(),
            "reconstruction_skew": quant.reconstruction_skew(),
            "under_mu": under,
            "under_mu2": under2,
            "centroids": np.var(quant.compare_centroids()),
            "point_dist": np.mean(quant.compare_point_dist()),
            "patchiness": quant.patchiness(quant.histograms()),
        }
    out["spread"] = {"eee": paper_eee(data), "vrm": paper_vrm(data)}
    return out


# ---------------------------------------------------------------- samples
def structured_sample(n=2400, d=32, seed=0):
    """Six anisotropic Gaussian clusters of unequal size and spread, float32 like token vectors."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=3.0, size=(6, d))
    scales = rng.gamma(2.0, 0.5, size=(6, d))
    labels = rng.choice(6, size=n, p=[0.35, 0.25, 0.15, 0.1, 0.1, 0.05])
    return (centres[labels] + scales[labels] * rng.normal(size=(n, d))).astype(np.float32)


def duplicated_sample(n=1600, d=32, seed=1):
    """A collapsed-model-like sample: half the rows are copies of 12 vectors."""
    rng = np.random.default_rng(seed)
    X = structured_sample(n, d, seed)
    copies = X[rng.choice(n, 12, replace=False)][rng.integers(0, 12, n // 2)]
    X[rng.choice(n, n // 2, replace=False)] = copies
    return X


@pytest.fixture(scope="module", params=["structured", "duplicated"])
def both(request):
    X = structured_sample() if request.param == "structured" else duplicated_sample()
    ours = measure_space(X, quantizers=("pq", "lsq"), m=M, nbits=NBITS, train_size="all",
                         seed=qz.PAPER_SEED, progress=False)
    return X, ours, paper_metric_run(X)


# ---------------------------------------------------------------- agreement
@pytest.mark.slow  # trains FAISS quantizers on the paper's sample
@pytest.mark.parametrize("kind", ["pq", "lsq"])
def test_seed_1234_gives_the_papers_codes(both, kind):
    _, ours, paper = both
    expected = np.stack([np.bincount(c, minlength=2**NBITS) for c in paper[kind]["codes"].T])
    np.testing.assert_array_equal(ours.histograms[kind], expected)


@pytest.mark.parametrize("kind", ["pq", "lsq"])
@pytest.mark.parametrize("name", [
    "reconstruction_error", "reconstruction_iqr", "reconstruction_skew", "under_mu", "under_mu2",
    "centroids", "point_dist", "patchiness",
])
@pytest.mark.slow  # trains FAISS quantizers on the paper's sample
def test_cell_measures_match_the_paper(both, kind, name):
    _, ours, paper = both
    assert ours.record[kind][name] == pytest.approx(paper[kind][name], rel=TOL, abs=1e-12)


@pytest.mark.slow  # trains FAISS quantizers on the paper's sample
def test_spread_measures_match_the_paper(both):
    X, ours, paper = both
    assert ours.record["spread"]["eee"] == pytest.approx(paper["spread"]["eee"], rel=TOL)
    vrm = ours.record["spread"]["vrm"]
    assert math.isfinite(vrm) and vrm == pytest.approx(paper["spread"]["vrm"], rel=TOL)
    # The paper's own random reference draw moves VRM by a little around the expectation's value.
    for seed in (0, 1):
        assert vrm == pytest.approx(paper_vrm(X, reference="draw", seed=seed), rel=0.05)


def test_fewer_vectors_than_dimensions_use_min_n_d_components():
    rng = np.random.default_rng(2)
    X = (rng.normal(size=(20, 64)) * rng.gamma(2.0, 1.0, size=64)).astype(np.float32)
    axes = spread.principal_axes(X)
    assert spread.eee(axes.eigvals, components=20) == pytest.approx(paper_eee(X), rel=TOL)
    assert spread.eee(axes.eigvals, components=20) != pytest.approx(spread.eee(axes.eigvals), rel=TOL)
    assert spread.vrm(X, axes) == pytest.approx(paper_vrm(X), rel=TOL)


# ---------------------------------------------------------------- VRM's behaviour
def test_vrm_isotropic_gaussian_is_small_and_grows_with_a_stretched_spectrum():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(5000, 64)) * 7.0 + 2.0
    v = spread.vrm(X, spread.principal_axes(X))
    # scipy's Vasicek estimate is biased low at n = 5,000 (r ≈ 0.96), hence not 0.
    assert 0.0 < v < 0.005
    assert v == pytest.approx(paper_vrm(X), rel=1e-6)
    # Rescaled to a standard normal's total variance, a stretched spectrum leaves its leading
    # coordinates wider and its trailing ones narrower than N(0, 1): r_i far from 1 at both ends.
    stretched = X * np.geomspace(1.0, 0.1, 64)
    assert spread.vrm(stretched, spread.principal_axes(stretched)) > 0.3


def test_vrm_with_many_duplicate_rows_is_a_finite_number():
    rng = np.random.default_rng(4)
    X = rng.normal(size=(3000, 16))
    X[:2500] = X[rng.integers(0, 5, 2500)]  # 2,500 copies of five vectors
    v = spread.vrm(X, spread.principal_axes(X))
    assert math.isfinite(v) and v > 0.1  # collapsed coordinates count (1 − 0)² each
    assert v == pytest.approx(paper_vrm(X), rel=TOL)


# ---------------------------------------------------------------- point_dist
def ref_point_dist(X, codes):
    """Plain per-cell loop: EEE (sklearn PCA, via paper_eee) of each cell's distinct vectors."""
    values = []
    for j in range(codes.shape[1]):
        for c in np.unique(codes[:, j]):
            members = np.unique(X[codes[:, j] == c], axis=0)
            if len(members) > 1:
                values.append(paper_eee(members.astype(np.float64)))
    return float(np.mean(values))


@pytest.fixture(scope="module")
def coded():
    """A sample with duplicates, and codes with small cells (< d vectors) and large ones (≥ d)."""
    rng = np.random.default_rng(5)
    X = structured_sample(900, 12, seed=5).astype(np.float64)
    X[:100] = X[100:200]  # 100 duplicated vectors
    codes = np.stack([rng.integers(0, 8, 900), rng.integers(0, 200, 900)], axis=1)
    codes[:50, 1] = 7  # half the duplicates sit in another cell than their twins: both count
    return X, codes


def test_point_dist_matches_a_plain_loop(coded):
    X, codes = coded
    counts = np.bincount(codes[:, 1], minlength=200)
    assert counts.max() > X.shape[1] > counts.min()  # both the Gram and the covariance routes
    ours = cells.point_dist(X, codes, 200)
    assert ours == pytest.approx(ref_point_dist(X, codes), rel=1e-9)
    assert cells.point_dist(X, codes, 200, workers=1) == ours  # threads do not change a bit


def test_point_dist_invariants(coded):
    X, codes = coded
    base = cells.point_dist(X, codes, 200)
    # EEE is a ratio of eigenvalues: one scale for every vector leaves it unchanged ...
    assert cells.point_dist(X * 3.5, codes, 200) == pytest.approx(base, rel=1e-10)
    # ... only distinct vectors count, so repeating the whole sample changes nothing ...
    assert cells.point_dist(np.vstack([X, X]), np.vstack([codes, codes]), 200) == pytest.approx(
        base, rel=1e-12
    )
    # ... and neither does the order of the rows, nor a shift of every vector.
    order = np.random.default_rng(6).permutation(len(X))
    assert cells.point_dist(X[order] + 10.0, codes[order], 200) == pytest.approx(base, rel=1e-9)


def test_point_dist_is_none_when_no_cell_has_two_distinct_vectors():
    X = np.repeat(np.eye(4), 3, axis=0)  # four distinct vectors, three copies each
    codes = np.repeat(np.arange(4), 3)[:, None]  # each vector alone in its cell
    assert cells.point_dist(X, codes, 4) is None


def test_distinct_rows_treat_negative_zero_as_zero():
    X = np.array([[0.0, 1.0], [-0.0, 1.0], [1.0, 0.0]], dtype=np.float32)
    rows = cells.distinct_rows(X)
    assert len(rows.first) == 2 and rows.inverse[0] == rows.inverse[1] != rows.inverse[2]


# ---------------------------------------------------------------- centroids, errors, seeds
def test_centroids_hand_computed():
    # Two 1-D codebooks: {0, 1, 3} has squared nearest-other distances 1, 1, 4; {0, 2, 6}: 4, 4, 16.
    # Pooled and divided by the maximum 16: 1/16, 1/16, 1/4, 1/4, 1/4, 1. Mean 0.3125, mean of
    # squares 0.19921875, variance 0.1015625 = 13/128.
    books = np.array([[[0.0], [1.0], [3.0]], [[0.0], [2.0], [6.0]]])
    assert cells.centroid_nn_variance(books) == 13 / 128
    assert cells.centroid_nn_variance(books * 5.0) == pytest.approx(13 / 128, rel=1e-14)
    grid = np.stack(np.meshgrid(np.arange(4.0), np.arange(4.0)), -1).reshape(1, 16, 2)
    assert cells.centroid_nn_variance(grid) == 0.0  # evenly spaced: every value 1


def test_under_mu_hand_computed():
    # L2 errors 1, 2, 3, 10: mean 4, so three lie below it and one below 2.
    got = cells.reconstruction_measures(np.array([1.0, 4.0, 9.0, 100.0]), 1000.0)
    assert got["under_mu"] == 0.75 and got["under_mu2"] == 0.25


def test_seed_1234_is_faiss_own_default_for_every_quantizer():
    import faiss

    defaults = {
        "pq": faiss.ProductQuantizer(8, 2, 4).cp.seed,
        "rq": faiss.ResidualQuantizer(8, 2, 4).cp.seed,
        "lsq": faiss.LocalSearchQuantizer(8, 2, 4).random_seed,
    }
    assert qz.faiss_seeds(qz.PAPER_SEED) == defaults
    for kind in ("pq", "lsq", "rq"):  # seeds up to 2³² − 1 reach FAISS's C int
        qz.make_quantizer(kind, 8, 2, 4, seed=2**32 - 1)
    mapped = [qz.faiss_seeds(s)["lsq"] for s in (0, 1, 1234, 74565, 2**32 - 1)]
    assert len(set(mapped)) == len(mapped)

