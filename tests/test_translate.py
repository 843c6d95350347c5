"""Translators against plain float64 references written here, on equal and mismatched dimensions."""

from __future__ import annotations

import numpy as np
import pytest

from latentgeo.config import PREPROCESSING, TRANSLATION_METHODS
from latentgeo.errors import LatentgeoError
from latentgeo.translate import MLPOptions, Translator, translate

SHAPES = [(7, 7), (5, 9), (9, 5)]  # (d_source, d_target)
N_ANCHORS, N_EVAL = 40, 15


# ----------------------------------------------------------------- plain references


def ref_stats(a: np.ndarray, kind: str):
    """(mean, per-dim scale, overall norm) of one space's anchors, written out plainly."""
    n, d = a.shape
    if kind == "none":
        return np.zeros(d), np.ones(d), 1.0
    mean = np.array([sum(a[i, j] for i in range(n)) / n for j in range(d)])
    if kind == "center":
        return mean, np.ones(d), 1.0
    if kind == "standard":
        std = np.array([np.sqrt(sum((a[i, j] - mean[j]) ** 2 for i in range(n)) / (n - 1)) for j in range(d)])
        std[std < 1e-8] = 1.0
        return mean, std, 1.0
    norms = [np.sqrt(np.sum((a[i] - mean) ** 2)) for i in range(n)]
    return mean, np.ones(d), float(np.mean(norms))


def ref_forward(x, stats, kind):
    mean, scale, _ = stats
    z = (x - mean) / scale
    if kind == "l2":
        z = z / np.sqrt((z**2).sum(axis=1, keepdims=True))
    return z


def ref_inverse(z, stats):
    mean, scale, norm = stats
    return z * scale * norm + mean


def ref_map(method, x, y, seed=0):
    """Fit on pre-processed anchors (already padded to a common width); return a function."""
    if method == "ortho":
        u, _, vt = np.linalg.svd(x.T @ y)
        r = u @ vt
        return lambda q: q @ r
    if method in ("linear", "lortho"):
        w = np.linalg.pinv(x) @ y
        if method == "lortho":
            u, _, vt = np.linalg.svd(w)
            w = u @ vt
        return lambda q: q @ w
    if method == "affine":
        sol = np.linalg.pinv(np.hstack([x, np.ones((len(x), 1))])) @ y
        return lambda q: q @ sol[:-1] + sol[-1]
    if method == "affine-sgd":
        return ref_adam_affine(x, y, seed)
    raise AssertionError(method)


def ref_adam_affine(x, y, seed, steps=300, lr=1e-3, b1=0.9, b2=0.999, eps=1e-8):
    """Adam written out in numpy from nn.Linear's seeded initial weights."""
    import torch

    torch.manual_seed(seed)
    layer = torch.nn.Linear(x.shape[1], y.shape[1], dtype=torch.float64)
    w, b = layer.weight.detach().numpy().T.copy(), layer.bias.detach().numpy().copy()
    params, m, v = [w, b], [np.zeros_like(w), np.zeros_like(b)], [np.zeros_like(w), np.zeros_like(b)]
    for t in range(1, steps + 1):
        resid = x @ params[0] + params[1] - y
        g_out = 2.0 * resid / resid.size
        grads = [x.T @ g_out, g_out.sum(axis=0)]
        for k in range(2):
            m[k] = b1 * m[k] + (1 - b1) * grads[k]
            v[k] = b2 * v[k] + (1 - b2) * grads[k] ** 2
            mhat, vhat = m[k] / (1 - b1**t), v[k] / (1 - b2**t)
            params[k] = params[k] - lr * mhat / (np.sqrt(vhat) + eps)
    return lambda q: q @ params[0] + params[1]


def ref_translate(xa, ya, xe, method, kind, seed=0):
    sx, sy = ref_stats(xa, kind), ref_stats(ya, kind)
    d = max(xa.shape[1], ya.shape[1])
    pad = lambda z: np.hstack([z, np.zeros((len(z), d - z.shape[1]))])  # noqa: E731
    f = ref_map(method, pad(ref_forward(xa, sx, kind)), pad(ref_forward(ya, sy, kind)), seed)
    return ref_inverse(f(pad(ref_forward(xe, sx, kind)))[:, : ya.shape[1]], sy)


@pytest.fixture(params=SHAPES, ids=lambda s: f"{s[0]}to{s[1]}")
def pair(request):
    d_s, d_t = request.param
    rng = np.random.default_rng(d_s * 100 + d_t)
    x = rng.normal(size=(N_ANCHORS + N_EVAL, d_s)) * rng.uniform(0.5, 3, d_s) + rng.normal(size=d_s)
    y = np.tanh(x @ rng.normal(size=(d_s, d_t))) + 0.1 * rng.normal(size=(len(x), d_t)) + 2.0
    x[:, 0] = 1.5  # a constant source dimension: standard scaling must keep its std at 1
    return x, y


# ----------------------------------------------------------------- against the references


@pytest.mark.parametrize("kind", PREPROCESSING)
@pytest.mark.parametrize("method", ["ortho", "linear", "lortho", "affine", "affine-sgd"])
def test_closed_form_matches_reference(pair, method, kind):
    x, y = pair
    got = translate(x[:N_ANCHORS], y[:N_ANCHORS], x[N_ANCHORS:], method, kind, seed=3)
    want = ref_translate(x[:N_ANCHORS], y[:N_ANCHORS], x[N_ANCHORS:], method, kind, seed=3)
    assert got.shape == (N_EVAL, y.shape[1]) and got.dtype == np.float64
    np.testing.assert_allclose(got, want, rtol=1e-7, atol=1e-9)


# l2 normalises rows, so an affine map between the raw spaces is no longer affine after it.
@pytest.mark.parametrize("kind", ["none", "center", "standard"])
def test_mlp_depth1_converges_to_affine_reference(kind):
    """A one-layer 'MLP' trained to convergence is the affine map (in float32). The map is exact
    so that early stopping on held-out anchors selects the converged network, not an earlier one."""
    rng = np.random.default_rng(7)
    x = rng.normal(size=(120, 4)) * [1.0, 2.0, 0.5, 3.0] + 1.0
    y = x @ rng.normal(size=(4, 3)) + 2.0
    n = 100
    opts = MLPOptions(depth=1, epochs=1500, batch_size=n, lr=2e-2, holdout=0.05, patience=1500)
    got = Translator("mlp", kind, seed=0, mlp=opts).fit(x[:n], y[:n]).transform(x[n:])
    # the reference affine map, fitted on the rows the MLP trained on (its hold-out excluded)
    keep = np.random.default_rng(0).permutation(n)[5:]
    sx, sy = ref_stats(x[:n], kind), ref_stats(y[:n], kind)
    f = ref_map("affine", ref_forward(x[keep], sx, kind), ref_forward(y[keep], sy, kind))
    want = ref_inverse(f(ref_forward(x[n:], sx, kind)), sy)
    np.testing.assert_allclose(got, want, atol=2e-3 * np.abs(want).max())


def test_every_configured_method_runs_on_mismatched_dims(pair):
    x, y = pair
    for method in TRANSLATION_METHODS:
        for kind in PREPROCESSING:
            t = Translator(method, kind, mlp=MLPOptions(epochs=5))
            out = t.fit(x[:N_ANCHORS], y[:N_ANCHORS]).transform(x[N_ANCHORS:])
            assert out.shape == (N_EVAL, y.shape[1]) and np.isfinite(out).all()


# ----------------------------------------------------------------- recovering known maps


def test_ortho_recovers_random_orthogonal_map():
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.normal(size=(12, 12)))
    x = rng.normal(size=(50, 12))
    t = Translator("ortho", "none").fit(x, x @ q)
    np.testing.assert_allclose(t.map_.weight, q, atol=1e-10)
    x_new = rng.normal(size=(9, 12))
    np.testing.assert_allclose(t.transform(x_new), x_new @ q, atol=1e-10)
    # with an offset on both sides, centring removes it and the rotation is still exact
    t = Translator("ortho", "center").fit(x + 3.0, x @ q - 1.0)
    np.testing.assert_allclose(t.transform(x_new + 3.0), x_new @ q - 1.0, atol=1e-10)


@pytest.mark.parametrize("d_in,d_out", [(6, 6), (4, 8), (8, 4)])
def test_linear_and_affine_recover_random_maps(d_in, d_out):
    rng = np.random.default_rng(d_in + d_out)
    w, b = rng.normal(size=(d_in, d_out)), rng.normal(size=d_out)
    x, x_new = rng.normal(size=(40, d_in)), rng.normal(size=(7, d_in))
    lin = Translator("linear", "none").fit(x, x @ w)
    np.testing.assert_allclose(lin.transform(x_new), x_new @ w, atol=1e-10)
    aff = Translator("affine", "none").fit(x, x @ w + b)
    np.testing.assert_allclose(aff.transform(x_new), x_new @ w + b, atol=1e-10)
    # standard scaling is itself affine, so affine + standard recovers the map too
    aff = Translator("affine", "standard").fit(x, x @ w + b)
    np.testing.assert_allclose(aff.transform(x_new), x_new @ w + b, atol=1e-9)


def test_mlp_learns_a_nonlinear_map_the_linear_methods_cannot():
    rng = np.random.default_rng(1)
    x = rng.uniform(-2, 2, size=(900, 3))
    y = np.stack([np.sin(2 * x[:, 0]) * x[:, 1], x[:, 2] ** 2, np.abs(x[:, 0] - x[:, 2])], axis=1)
    xa, ya, xe, ye = x[:700], y[:700], x[700:], y[700:]
    opts = MLPOptions(depth=3, width=64, epochs=150, batch_size=32, lr=3e-3, patience=20)
    mse = {
        m: float(np.mean((translate(xa, ya, xe, m, "standard", seed=0, mlp=opts) - ye) ** 2))
        for m in ("mlp", "linear", "affine", "ortho")
    }
    assert mse["mlp"] < 0.5 * min(mse["linear"], mse["affine"], mse["ortho"]), mse


def test_mlp_is_seeded():
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(60, 4)), rng.normal(size=(60, 3))
    opts = MLPOptions(epochs=10)
    a = translate(x[:50], y[:50], x[50:], "mlp", "standard", seed=5, mlp=opts)
    b = translate(x[:50], y[:50], x[50:], "mlp", "standard", seed=5, mlp=opts)
    c = translate(x[:50], y[:50], x[50:], "mlp", "standard", seed=6, mlp=opts)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_l2_output_lives_at_the_target_anchors_mean_norm():
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(30, 5)), 4.0 * rng.normal(size=(30, 6)) + 1.0
    out = translate(x[:20], y[:20], x[20:], "ortho", "l2")
    centred = y[:20] - y[:20].mean(axis=0)
    np.testing.assert_allclose(
        np.linalg.norm(out - y[:20].mean(axis=0), axis=1), np.linalg.norm(centred, axis=1).mean()
    )


def test_bad_names_and_shapes():
    with pytest.raises(LatentgeoError, match="unknown method"):
        Translator("procrustes", "none")
    with pytest.raises(LatentgeoError, match="unknown pre-processing"):
        Translator("ortho", "zscore")
    with pytest.raises(LatentgeoError, match="paired"):
        Translator().fit(np.zeros((5, 2)), np.zeros((4, 2)))
    with pytest.raises(LatentgeoError, match="before fit"):
        Translator().transform(np.zeros((1, 2)))
