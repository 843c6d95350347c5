"""Similarity indices: known values, plain references and invariances."""

from __future__ import annotations

import numpy as np
import pytest

from latentgeo.errors import LatentgeoError
from latentgeo.translation.similarity import linear_cka, mutual_knn, rbf_cka


def ref_hsic_cka(k: np.ndarray, l: np.ndarray) -> float:
    """CKA from Gram matrices through the centring matrix H = I − 11ᵀ/n, written out."""
    n = len(k)
    h = np.eye(n) - np.ones((n, n)) / n
    hsic = lambda a, b: np.trace(a @ h @ b @ h)  # noqa: E731
    return hsic(k, l) / np.sqrt(hsic(k, k) * hsic(l, l))


def ref_rbf_gram(x: np.ndarray) -> np.ndarray:
    n = len(x)
    d = np.array([[np.linalg.norm(x[i] - x[j]) for j in range(n)] for i in range(n)])
    sigma = np.median([d[i, j] for i in range(n) for j in range(n) if i != j])
    return np.exp(-(d**2) / (2 * sigma**2))


def ref_mutual_knn(a: np.ndarray, b: np.ndarray, k: int) -> float:
    def neighbours(x, i):
        xn = x / np.linalg.norm(x, axis=1, keepdims=True)
        sims = [(-(xn[i] @ xn[j]), j) for j in range(len(x)) if j != i]
        return {j for _, j in sorted(sims)[:k]}

    return float(np.mean([len(neighbours(a, i) & neighbours(b, i)) / k for i in range(len(a))]))


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(40, 6))
    b = np.tanh(a @ rng.normal(size=(6, 9))) + 0.3 * rng.normal(size=(40, 9))
    return a, b


def random_orthogonal(d, seed):
    return np.linalg.qr(np.random.default_rng(seed).normal(size=(d, d)))[0]


def test_linear_cka_known_values(data):
    a, b = data
    assert linear_cka(a, a) == pytest.approx(1.0)
    # one dimension each: linear CKA is the squared Pearson correlation
    x = np.array([1.0, 2.0, 3.0, 4.0, 6.0])
    y = np.array([2.0, 1.0, 4.0, 3.0, 5.0])
    assert linear_cka(x[:, None], y[:, None]) == pytest.approx(np.corrcoef(x, y)[0, 1] ** 2)
    # orthogonal column blocks: no shared variance
    z = np.zeros((4, 1))
    assert linear_cka(np.array([[1.0], [-1.0], [0.0], [0.0]]), np.array([[0.0], [0.0], [1.0], [-1.0]])) == 0.0
    assert linear_cka(z, a[:4]) == 0.0  # a constant side


def test_linear_cka_matches_gram_reference(data):
    a, b = data
    assert linear_cka(a, b) == pytest.approx(ref_hsic_cka(a @ a.T, b @ b.T), rel=1e-10)


def test_rbf_cka_matches_reference(data):
    a, b = data
    assert rbf_cka(a, b) == pytest.approx(ref_hsic_cka(ref_rbf_gram(a), ref_rbf_gram(b)), rel=1e-10)
    assert rbf_cka(a, a) == pytest.approx(1.0)


def test_mutual_knn_matches_reference(data):
    a, b = data
    assert mutual_knn(a, b, k=5) == pytest.approx(ref_mutual_knn(a, b, 5))
    assert mutual_knn(a, a, k=5) == 1.0


@pytest.mark.parametrize("index", [linear_cka, rbf_cka, lambda a, b: mutual_knn(a, b, k=5)])
def test_invariant_to_orthogonal_maps_and_isotropic_scaling(data, index):
    a, b = data
    base = index(a, b)
    assert index(a @ random_orthogonal(6, 1), b) == pytest.approx(base, rel=1e-9)
    assert index(a, 7.5 * b @ random_orthogonal(9, 2)) == pytest.approx(base, rel=1e-9)
    assert index(0.01 * a, b) == pytest.approx(base, rel=1e-9)


def test_cka_invariant_to_translation(data):
    a, b = data
    assert linear_cka(a + 5.0, b - 2.0) == pytest.approx(linear_cka(a, b), rel=1e-9)
    assert rbf_cka(a + 5.0, b - 2.0) == pytest.approx(rbf_cka(a, b), rel=1e-9)


def test_unrelated_high_dimensional_spaces_score_low():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(500, 20)), rng.normal(size=(500, 20))
    assert linear_cka(a, b) < 0.1
    assert mutual_knn(a, b, k=10) < 0.1


def test_bad_inputs(data):
    a, b = data
    with pytest.raises(LatentgeoError, match="row counts differ"):
        linear_cka(a, b[:-1])
    with pytest.raises(LatentgeoError, match="2-D"):
        rbf_cka(a[:, 0], b)
    with pytest.raises(LatentgeoError, match="neighbours"):
        mutual_knn(a, b, k=40)
