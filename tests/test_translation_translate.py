"""Translators against plain float64 references written here, on equal and mismatched dimensions;
the ridge methods against the normal equations, and their cross-validation against brute force."""

from __future__ import annotations

import numpy as np
import pytest

from latentgeo.errors import LatentgeoError
from latentgeo.translation.methods import METHOD_FITS, METHOD_LABELS, MIN_ANCHORS, PREPROCESSING, TRANSLATION_METHODS
from latentgeo.translation.translate import (
    RIDGE_GRID,
    MLPOptions,
    Translator,
    constant_std_threshold,
    cv_folds,
    fit_ridge,
    fit_scaling,
    ridge,
    ridge_cv_mse,
    translate,
)

SHAPES = [(7, 7), (5, 9), (9, 5)]  # (d_source, d_target)
N_ANCHORS, N_EVAL = 40, 15


# ----------------------------------------------------------------- plain references


def ref_stats(a: np.ndarray, kind: str):
    """(mean, per-dim scale, overall norm) of one space's anchors, written out plainly. As the
    translation library: a std below 10 machine epsilons of the anchors' own dtype becomes 1."""
    n, d = a.shape
    if kind == "none":
        return np.zeros(d), np.ones(d), 1.0
    mean = np.array([sum(a[i, j] for i in range(n)) / n for j in range(d)])
    if kind == "center":
        return mean, np.ones(d), 1.0
    if kind == "standard":
        std = np.array([np.sqrt(sum((a[i, j] - mean[j]) ** 2 for i in range(n)) / (n - 1)) for j in range(d)])
        std[std < 10 * np.finfo(a.dtype).eps] = 1.0
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


def ref_ridge(x, y, lam):
    """Ridge by its normal equations, (XᵀX + λI) W = XᵀY, in float64."""
    return np.linalg.solve(x.T @ x + lam * np.eye(x.shape[1]), x.T @ y)


def ref_ridge_affine(x, y, lam):
    """Ridge with an unpenalised bias, by the normal equations of [X 1] with penalty diag(λ, …, λ, 0)."""
    xa = np.hstack([x, np.ones((len(x), 1))])
    penalty = lam * np.eye(xa.shape[1])
    penalty[-1, -1] = 0.0
    sol = np.linalg.solve(xa.T @ xa + penalty, xa.T @ y)
    return sol[:-1], sol[-1]


def ref_cv_mse(x, y, lams, folds, intercept):
    """K-fold CV by brute force: refit by the normal equations on each fold, predict, average."""
    sse = np.zeros(len(lams))
    for val in folds:
        fit = np.setdiff1d(np.arange(len(x)), val)
        for i, lam in enumerate(lams):
            if intercept:
                w, b = ref_ridge_affine(x[fit], y[fit], lam)
            else:
                w, b = ref_ridge(x[fit], y[fit], lam), 0.0
            sse[i] += np.sum((x[val] @ w + b - y[val]) ** 2)
    return sse / y.size


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
@pytest.mark.slow  # trains MLPs
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


@pytest.mark.slow  # trains MLPs
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


# ----------------------------------------------------------------- near-constant dimensions


def _columns_with_std(stds, n=50, dtype=np.float32, seed=0):
    """n rows whose column j has sample std exactly stds[j] (in float64) around an offset, cast to
    ``dtype``."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, len(stds)))
    z = (z - z.mean(axis=0)) / z.std(axis=0, ddof=1)
    return (0.25 + z * np.asarray(stds)).astype(dtype)


def test_constant_std_threshold_is_ten_eps_of_the_input_dtype():
    assert constant_std_threshold(np.float32) == pytest.approx(10 * 1.1920929e-07)
    assert constant_std_threshold(np.float64) == pytest.approx(10 * 2.220446e-16)
    assert constant_std_threshold(np.int64) == constant_std_threshold(np.float64)


def test_standard_scaling_treats_float32_noise_dimensions_as_constant_like_the_library():
    """float32 anchors: a dimension with std 1e-7 (below 10·eps = 1.19e-6) gets scale 1, one with
    std 1e-5 keeps its std; the same values in float64 keep both (10·eps = 2.2e-15)."""
    import torch

    a32 = _columns_with_std([2.0, 1e-7, 1e-5, 0.0])
    s32 = fit_scaling("standard", a32)
    assert s32.scale[1] == 1.0 and s32.scale[3] == 1.0
    assert s32.scale[2] == pytest.approx(1e-5, rel=1e-2) and s32.scale[0] == pytest.approx(2.0, rel=1e-6)
    # the library's rule on its own float32 tensors: std(dim=0) < 10 · eps(float32) → 1
    lib_scale = torch.from_numpy(a32).std(dim=0)
    lib_constant = (lib_scale < 10 * torch.finfo(torch.float32).eps).numpy()
    assert list(lib_constant) == [False, True, False, True]
    np.testing.assert_array_equal(s32.scale == 1.0, lib_constant)

    s64 = fit_scaling("standard", a32.astype(np.float64))
    assert s64.scale[1] == pytest.approx(np.std(a32[:, 1].astype(np.float64), ddof=1)) and s64.scale[1] < 1e-6
    # Translator must decide on the anchors' own dtype, not after its cast to float64
    t = Translator("ortho", "standard").fit(a32, a32)
    np.testing.assert_array_equal(t.source_scaling_.scale, s32.scale)
    # and a dead float32 dimension stays near 0 in the normalised space instead of unit noise
    z = (a32[:, 1].astype(np.float64) - s32.mean[1]) / s32.scale[1]
    assert np.abs(z).max() < 1e-6


# ----------------------------------------------------------------- ridge


@pytest.mark.parametrize("n,d_in,d_out", [(30, 8, 5), (12, 20, 6)])
@pytest.mark.parametrize("lam", [1e-3, 0.5, 40.0])
def test_ridge_matches_normal_equations(n, d_in, d_out, lam):
    rng = np.random.default_rng(n + d_in)
    x, y = rng.normal(size=(n, d_in)) * rng.uniform(0.1, 3, d_in), rng.normal(size=(n, d_out))
    np.testing.assert_allclose(ridge(x, y, lam), ref_ridge(x, y, lam), rtol=1e-9, atol=1e-12)


def test_ridge_tends_to_least_squares():
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(40, 6)), rng.normal(size=(40, 3))
    lstsq = np.linalg.lstsq(x, y, rcond=None)[0]
    np.testing.assert_allclose(ridge(x, y, 1e-10), lstsq, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(ridge(x, y, 0.0), lstsq, rtol=1e-10, atol=1e-12)
    # under-determined: λ → 0 gives the minimum-norm solution, as least squares does
    xw = rng.normal(size=(5, 9))
    np.testing.assert_allclose(ridge(xw, y[:5], 0.0), np.linalg.pinv(xw) @ y[:5], rtol=1e-9, atol=1e-12)
    # the fitted map with the grid pinned at a tiny λ is the closed-form affine map
    w, b = rng.normal(size=(6, 3)), rng.normal(size=3)
    fit = fit_ridge(x, x @ w + b + 0.01 * y, intercept=True, grid=(1e-12,))
    ls = np.linalg.lstsq(np.hstack([x, np.ones((40, 1))]), x @ w + b + 0.01 * y, rcond=None)[0]
    np.testing.assert_allclose(fit.map.weight, ls[:-1], rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(fit.map.bias, ls[-1], rtol=1e-8, atol=1e-10)


def test_affine_ridge_leaves_the_bias_unpenalised():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(25, 7)) + 3.0
    y = x @ rng.normal(size=(7, 4)) + 10.0 + rng.normal(size=(25, 4))
    for lam_rel in (1e-4, 0.3, 1e6):
        fit = fit_ridge(x, y, intercept=True, grid=(lam_rel,))
        w, b = ref_ridge_affine(x, y, fit.lam)
        np.testing.assert_allclose(fit.map.weight, w, rtol=1e-8, atol=1e-10)
        np.testing.assert_allclose(fit.map.bias, b, rtol=1e-8, atol=1e-10)
    # an enormous λ shrinks W to ~0 and leaves the mean estimator, not 0
    np.testing.assert_allclose(fit.map(x), np.broadcast_to(y.mean(axis=0), y.shape), atol=1e-4)
    linear = fit_ridge(x, y, intercept=False, grid=(1e6,))
    assert np.abs(linear.map(x)).max() < 1e-3 and not linear.map.bias.any()


@pytest.mark.parametrize("intercept", [False, True])
def test_ridge_cross_validation_matches_brute_force(intercept):
    rng = np.random.default_rng(6)
    x = rng.normal(size=(23, 9)) * rng.uniform(0.2, 2, 9) + 1.0
    y = x @ rng.normal(size=(9, 4)) + rng.normal(size=(23, 4))
    lams = np.array([1e-6, 1e-2, 0.3, 4.0, 100.0])
    got = ridge_cv_mse(x, y, lams, intercept=intercept, folds=5, seed=11)
    want = ref_cv_mse(x, y, lams, cv_folds(23, 5, 11), intercept)
    np.testing.assert_allclose(got, want, rtol=1e-9)
    folds = cv_folds(23, 5, 11)
    assert sorted(np.concatenate(folds)) == list(range(23)) and {len(f) for f in folds} == {4, 5}
    # the chosen λ is the grid's argmin of the brute-force CV curve
    fit = fit_ridge(x, y, intercept=intercept, seed=11)
    s_max2 = np.linalg.svd(x - x.mean(axis=0) if intercept else x, compute_uv=False)[0] ** 2
    grid = np.asarray(RIDGE_GRID) * s_max2
    brute = ref_cv_mse(x, y, grid, folds, intercept)
    assert fit.lam == pytest.approx(grid[np.argmin(brute)], rel=1e-12)
    assert fit.lam_relative == pytest.approx(RIDGE_GRID[np.argmin(brute)])


def test_cross_validation_picks_more_shrinkage_on_a_noisy_underdetermined_problem():
    rng = np.random.default_rng(8)
    w = rng.normal(size=(10, 4))
    x_clean = rng.normal(size=(300, 10))
    clean = fit_ridge(x_clean, x_clean @ w + 0.01 * rng.normal(size=(300, 4)), intercept=True, seed=0)
    x_noisy = rng.normal(size=(40, 60))
    w_noisy = rng.normal(size=(60, 4))
    noisy = fit_ridge(x_noisy, x_noisy @ w_noisy + 8.0 * rng.normal(size=(40, 4)), intercept=True, seed=0)
    assert noisy.lam_relative > 100 * clean.lam_relative, (noisy.lam_relative, clean.lam_relative)
    assert clean.lam_relative <= 1e-4 and noisy.effective_df < 0.5 * 40


def test_ridge_methods_are_seeded_and_recorded(pair):
    x, y = pair
    for method in ("linear-ridge", "affine-ridge"):
        a = Translator(method, "standard", seed=1).fit(x[:N_ANCHORS], y[:N_ANCHORS])
        b = Translator(method, "standard", seed=1).fit(x[:N_ANCHORS], y[:N_ANCHORS])
        np.testing.assert_array_equal(a.transform(x[N_ANCHORS:]), b.transform(x[N_ANCHORS:]))
        rec = a.fit_record_
        assert rec == b.fit_record_ and rec["ridge_cv_mse"] > 0
        assert rec["ridge_lambda_relative"] in RIDGE_GRID and rec["ridge_lambda"] > 0
        assert 0 < rec["ridge_effective_df"] <= min(N_ANCHORS, x.shape[1])
        # the padded translation is the reference pipeline's ridge at the chosen λ
        want = ref_translate_ridge(
            x[:N_ANCHORS], y[:N_ANCHORS], x[N_ANCHORS:], rec["ridge_lambda"], method == "affine-ridge"
        )
        np.testing.assert_allclose(a.transform(x[N_ANCHORS:]), want, rtol=1e-7, atol=1e-9)
    assert Translator("affine", "standard").fit(x[:N_ANCHORS], y[:N_ANCHORS]).fit_record_ == {}


def ref_translate_ridge(xa, ya, xe, lam, intercept, kind="standard"):
    sx, sy = ref_stats(xa, kind), ref_stats(ya, kind)
    xf, yf = ref_forward(xa, sx, kind), ref_forward(ya, sy, kind)
    if intercept:
        w, b = ref_ridge_affine(xf, yf, lam)
    else:
        w, b = ref_ridge(xf, yf, lam), 0.0
    return ref_inverse(ref_forward(xe, sx, kind) @ w + b, sy)


def test_ridge_needs_one_anchor_per_fold():
    assert MIN_ANCHORS["linear-ridge"] == MIN_ANCHORS["affine-ridge"] == 5
    with pytest.raises(LatentgeoError, match="at least 5 anchors"):
        Translator("affine-ridge", "none").fit(np.ones((4, 2)), np.ones((4, 2)))


# ----------------------------------------------------------------- names say how each is fitted


def test_every_method_says_how_it_is_fitted():
    assert set(METHOD_FITS) == set(METHOD_LABELS) == set(TRANSLATION_METHODS)
    assert METHOD_FITS["affine"].startswith("closed form") and "least squares" in METHOD_FITS["affine"]
    assert "Adam" in METHOD_FITS["affine-sgd"] and "300" in METHOD_FITS["affine-sgd"]
    assert all("CV" in METHOD_FITS[m] for m in ("linear-ridge", "affine-ridge"))


def test_affine_sgd_stops_short_of_the_closed_form_affine():
    """Same model, two fits: the closed form is the least-squares optimum on the anchors; 300 Adam
    steps from a random start are not there yet."""
    rng = np.random.default_rng(9)
    x = rng.normal(size=(200, 6)) * [1, 2, 3, 0.5, 1, 4]
    y = x @ rng.normal(size=(6, 5)) + 1.0 + 0.1 * rng.normal(size=(200, 5))
    fit_mse = {
        m: float(np.mean((Translator(m, "none").fit(x, y).transform(x) - y) ** 2)) for m in ("affine", "affine-sgd")
    }
    assert fit_mse["affine"] < 0.5 * fit_mse["affine-sgd"], fit_mse
