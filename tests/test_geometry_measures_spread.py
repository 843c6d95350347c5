"""Spread measures and TwoNN against plain float64 references, known values and invariants."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.spatial.distance import cdist
from scipy.stats import differential_entropy

from latentgeo.geometry.measures import intrinsic, spread


# ---------------------------------------------------------------- plain references (float64)
def ref_eigvals(X):
    return np.sort(np.linalg.eigvalsh(np.cov(np.asarray(X, dtype=np.float64).T)))[::-1]


def ref_eee(lam):
    d, total = len(lam), lam.sum()
    diff = [sum(lam[: i + 1]) - total * (i + 1) / d for i in range(d)]
    area = sum((diff[i] + diff[i + 1]) / 2 for i in range(d - 1))
    return area / (total * d / 2)


def ref_vasicek(x, m):
    x = np.sort(x)
    n = len(x)
    return (
        sum(math.log(n / (2 * m) * (x[min(i + m, n - 1)] - x[max(i - m, 0)])) for i in range(n)) / n
    )


def ref_vrm(X):
    """The paper's VRM in float64, its random reference draw replaced by its expectation d."""
    X = np.asarray(X, dtype=np.float64)
    n, d = X.shape
    lam, vecs = np.linalg.eigh(np.cov(X.T))
    Z = (X - X.mean(axis=0)) @ vecs[:, ::-1][:, : min(n, d)] * math.sqrt(d / lam.sum())
    h = [differential_entropy(Z[:, j]) for j in range(Z.shape[1])]
    r = [math.exp(x) / math.sqrt(2 * math.pi * math.e) for x in h]
    return sum((1 - x) ** 2 for x in r) / d


def ref_isoscore(X):
    # IsoScore (Rudman et al. 2022), written out: PCA variances, normalised to length √d, defect
    # from the all-ones vector, rescaled to [0, 1].
    lam = ref_eigvals(X)
    d = len(lam)
    norm = lam * math.sqrt(d) / np.linalg.norm(lam)
    defect = np.linalg.norm(norm - 1) / math.sqrt(2 * (d - math.sqrt(d)))
    return ((d - defect**2 * (d - math.sqrt(d))) ** 2 - d) / (d * (d - 1))


def ref_effective_rank(lam):
    p = lam / lam.sum()
    return math.exp(-sum(x * math.log(x) for x in p if x > 0))


def ref_twonn(X, discard=0.1):
    """Facco et al. 2017: fit -log(1 - F(μ)) = d·log μ through the origin on the kept ratios."""
    dist = cdist(X, X)
    np.fill_diagonal(dist, np.inf)
    two = np.sort(dist, axis=1)[:, :2]
    mu = np.sort(two[:, 1] / two[:, 0])
    n = len(mu)
    keep = int(n * (1 - discard))
    x = np.log(mu[:keep])
    y = -np.log(1 - np.arange(1, keep + 1) / n)
    return float((x * y).sum() / (x * x).sum())


@pytest.fixture(scope="module")
def cloud():
    rng = np.random.default_rng(11)
    A = rng.normal(size=(6, 6)) * np.array([3.0, 2.0, 1.0, 0.5, 0.3, 0.1])
    return (rng.normal(size=(400, 6)) @ A.T + 2.0).astype(np.float64)


def rotation(d, seed):
    q, r = np.linalg.qr(np.random.default_rng(seed).normal(size=(d, d)))
    return q * np.sign(np.diag(r))


# ---------------------------------------------------------------- against references
def test_principal_axes_match_numpy(cloud):
    axes = spread.principal_axes(cloud.astype(np.float32), chunk=64)
    np.testing.assert_allclose(
        axes.cov, np.cov(cloud.astype(np.float32).astype(np.float64).T), rtol=1e-10
    )
    np.testing.assert_allclose(axes.eigvals, ref_eigvals(cloud.astype(np.float32)), rtol=1e-9)


def test_eee_reference_and_extremes(cloud):
    lam = ref_eigvals(cloud)
    assert spread.eee(lam) == pytest.approx(ref_eee(lam), rel=1e-12)
    assert spread.eee(np.ones(10)) == pytest.approx(0.0, abs=1e-15)
    d = 10
    assert spread.eee(np.r_[1.0, np.zeros(d - 1)]) == pytest.approx((d - 1) ** 2 / d**2, rel=1e-12)
    # p components: the largest p eigenvalues against a uniform spectrum over p
    assert spread.eee(lam[::-1], components=4) == pytest.approx(ref_eee(lam[:4]), rel=1e-12)
    stack = np.stack([lam, np.ones(6), np.r_[1.0, np.zeros(5)]])
    np.testing.assert_allclose(
        spread.eee_sorted(stack), [ref_eee(x) for x in stack], rtol=1e-12, atol=1e-15
    )


def test_vrm_matches_reference(cloud):
    axes = spread.principal_axes(cloud)
    assert spread.vrm(cloud, axes, block=4, chunk=50) == pytest.approx(ref_vrm(cloud), rel=1e-10)
    assert spread.vrm(cloud, axes) == pytest.approx(ref_vrm(cloud), rel=1e-10)


@pytest.mark.parametrize("n", [7, 500, 1001, 1500])
def test_entropies_are_scipys_at_its_defaults(n):
    # The paper calls scipy's differential_entropy at its defaults: above 1,000 values that is
    # Vasicek's estimator with window floor(√n + 0.5), which we compute ourselves (sorting in place).
    rng = np.random.default_rng(13)
    z = rng.normal(size=(3, n))
    z[2, : n // 2] = z[2, 0]  # many equal values: −inf where every spacing of a window vanishes
    got = spread.coordinate_entropies(z.copy())
    with np.errstate(divide="ignore"):
        expected = [differential_entropy(row) for row in z]
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    if n > 1000:
        window = math.floor(math.sqrt(n) + 0.5)
        np.testing.assert_allclose(got[:2], [ref_vasicek(row, window) for row in z[:2]], rtol=1e-12)


def test_isoscore_matches_package_on_points_and_reference(cloud):
    from IsoScore import IsoScore

    axes = spread.principal_axes(cloud)
    ours = spread.isoscore(axes.cov)
    assert ours == pytest.approx(
        float(IsoScore.IsoScore(cloud)), rel=1e-9
    )  # points: samples × dims
    # the package takes √d of an integer tensor in float32, so it agrees with float64 to ~1e-7
    assert ours == pytest.approx(ref_isoscore(cloud), rel=1e-6)
    rng = np.random.default_rng(14)
    iso = rng.normal(size=(20_000, 8))
    assert spread.isoscore(np.cov(iso.T)) > 0.99
    line = np.outer(rng.normal(size=500), rng.normal(size=8)) + 1e-6 * rng.normal(size=(500, 8))
    assert spread.isoscore(np.cov(line.T)) < 0.01


def test_effective_rank_reference_and_range(cloud):
    lam = ref_eigvals(cloud)
    assert spread.effective_rank(lam) == pytest.approx(ref_effective_rank(lam), rel=1e-12)
    assert spread.effective_rank(np.ones(7)) == pytest.approx(7.0)
    assert spread.effective_rank(np.r_[2.0, np.zeros(5)]) == pytest.approx(1.0)


def test_anisotropy_matches_loop():
    rng = np.random.default_rng(15)
    X = rng.normal(size=(50, 5)) + 1.0
    i, j = spread.random_pairs(50, 3000, seed=3)
    assert np.all(i != j) and set(np.unique(j)) == set(range(50))
    ref = np.mean(
        [X[a] @ X[b] / (np.linalg.norm(X[a]) * np.linalg.norm(X[b])) for a, b in zip(i, j, strict=True)]
    )
    assert spread.anisotropy(X, 3000, seed=3, chunk=128) == pytest.approx(ref, rel=1e-12)
    same = np.outer(np.arange(1.0, 11.0), [1.0, 2.0, 2.0])  # one direction: cosine 1
    assert spread.anisotropy(same, 100, seed=0) == pytest.approx(1.0)


# ---------------------------------------------------------------- invariants
def test_rotation_invariance(cloud):
    Y = cloud @ rotation(cloud.shape[1], 16)
    ax, ay = spread.principal_axes(cloud), spread.principal_axes(Y)
    assert spread.eee(ay.eigvals) == pytest.approx(spread.eee(ax.eigvals), rel=1e-10)
    assert spread.isoscore(ay.cov) == pytest.approx(spread.isoscore(ax.cov), rel=1e-10)
    assert spread.effective_rank(ay.eigvals) == pytest.approx(
        spread.effective_rank(ax.eigvals), rel=1e-10
    )
    assert spread.vrm(Y, ay) == pytest.approx(spread.vrm(cloud, ax), rel=1e-8)


# ---------------------------------------------------------------- TwoNN
def test_two_nearest_distances_match_cdist():
    rng = np.random.default_rng(17)
    P = rng.normal(size=(300, 7))
    r1, r2 = intrinsic.two_nearest_distances(P, chunk=64)
    d = cdist(P, P)
    np.fill_diagonal(d, np.inf)
    d.sort(axis=1)
    np.testing.assert_allclose(r1, d[:, 0], rtol=1e-9)
    np.testing.assert_allclose(r2, d[:, 1], rtol=1e-9)


def test_twonn_agrees_with_reference_and_skdim_and_known_dimensions():
    import skdim

    rng = np.random.default_rng(18)
    plane = rng.random((1500, 2)) @ rotation(10, 19)[:2]  # a 2-D square isometrically in 10-D
    ours = intrinsic.twonn_dimension(plane, sample=5000, seed=0)
    assert ours == pytest.approx(ref_twonn(plane), rel=1e-9)
    assert ours == pytest.approx(skdim.id.TwoNN().fit(plane).dimension_, rel=1e-9)  # its own search
    assert ours == pytest.approx(2.0, abs=0.25)
    cube = rng.random((2000, 5))
    assert intrinsic.twonn_dimension(cube) == pytest.approx(5.0, abs=0.7)


def test_twonn_subsample_is_seeded_and_drops_duplicates():
    rng = np.random.default_rng(20)
    X = rng.normal(size=(900, 3))
    a = intrinsic.twonn_dimension(X, sample=400, seed=1)
    assert a == intrinsic.twonn_dimension(X, sample=400, seed=1)
    assert a != intrinsic.twonn_dimension(X, sample=400, seed=2)
    with_dup = np.vstack([X, X[:5]])  # duplicates have r1 = 0 and no ratio
    assert np.isfinite(intrinsic.twonn_dimension(with_dup))
