"""Latent space translation: maps from one embedding space to another, fitted on parallel anchors.

Two tiers, as in the translation paper's library (``latentis``): small pure functions that compute
a state from anchors (a pre-processing record, an affine map, a trained MLP), and a thin
:class:`Translator` with ``fit``/``transform`` composing them:

    source x ──preprocess(source anchors)──► zero-pad ──► map ──► truncate ──► postprocess(target
    anchors) ──► ŷ in the target space

Methods (:data:`~latentgeo.translation.methods.TRANSLATION_METHODS`; ``METHOD_FITS`` there says
how each is fitted), X the
pre-processed source anchors (N × d), Y the target's:

* ``ortho``        R = U Vᵀ from the SVD of Xᵀ Y (orthogonal Procrustes), ŷ = x R.
* ``linear``       least squares X W ≈ Y, no bias, closed form (minimum norm when under-determined).
* ``linear-ridge`` ridge regression min ‖X W − Y‖² + λ‖W‖², no bias, closed form; λ chosen on the
  anchors by K-fold cross-validation over a log grid (:func:`fit_ridge`).
* ``lortho``       the least-squares W projected onto the nearest orthogonal matrix (U Vᵀ of its SVD).
* ``affine``       least squares [X 1] [W; b] ≈ Y: **our closed form** with a bias (one solve).
* ``affine-ridge`` ridge with an unpenalised bias: ridge on the centred anchors, b = ȳ − x̄ W;
  λ by cross-validation as for ``linear-ridge``.
* ``affine-sgd``   the affine map **trained as the library does**: ``nn.Linear``, Adam lr 1e-3,
  300 full-batch steps on the MSE, seeded. It approaches ``affine`` but stops short of it.
* ``mlp``          a ReLU network of ``depth`` linear layers (width max(d_in, d_out) by default),
  Adam on the MSE, early stopping on a held-out part of the anchors, seeded.

Pre-processing (:data:`~latentgeo.translation.methods.PREPROCESSING`), each fitted on one space's anchors:

* ``none``; ``center`` (subtract the anchor mean; output + the target anchors' mean);
* ``standard`` per dimension, N−1 standard deviation; a deviation below 10 machine epsilons of
  the anchors' own dtype (float32: 1.19e-6, float64: 2.2e-15) is replaced by 1, as the library
  does (:func:`constant_std_threshold`); output × target std + target mean;
* ``l2`` centre, then L2-normalise each row; output × the target anchors' mean (centred) norm +
  target mean.

When the two spaces' dimensions differ, both are zero-padded to the larger one before mapping and
the output is cut back to the target's dimension (the square ``ortho``/``lortho`` maps need it;
for the others it changes nothing but keeps one code path). Everything closed-form runs in
float64; results are float64.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

import numpy as np

from latentgeo.errors import LatentgeoError
from latentgeo.translation.methods import (
    MIN_ANCHORS, PREPROCESSING, RIDGE_FOLDS, RIDGE_METHODS, TRANSLATION_METHODS,
)

# Deferred to the functions that use them, so that importing this module stays light: torch.

# A standard deviation below this many machine epsilons of the anchors' dtype is a constant
# dimension (scale 1), as the library's standard scaling decides it.
CONSTANT_STD_EPS = 10
# Ridge: K folds of the anchors, and the λ grid as multiples of the largest eigenvalue of the
# (centred, for affine-ridge) anchors' Gram matrix XᵀX, 4 points a decade from 1e-8 (least
# squares in all but the weakest directions) to 10 (every direction shrunk at least 11-fold: close
# to the mean estimator).
RIDGE_GRID = tuple(float(v) for v in np.logspace(-8, 1, 37))


def check_method(method: str, preprocess: str) -> None:
    """Raise :class:`LatentgeoError` for an unknown method or pre-processing name."""
    if method not in TRANSLATION_METHODS:
        raise LatentgeoError(f"unknown method {method!r}; allowed: {list(TRANSLATION_METHODS)}")
    if preprocess not in PREPROCESSING:
        raise LatentgeoError(f"unknown pre-processing {preprocess!r}; allowed: {list(PREPROCESSING)}")


# --------------------------------------------------------------------------- pre-processing


@dataclass(frozen=True)
class Scaling:
    """Pre-processing state of one space: ``kind``, anchor ``mean`` (d,), per-dim ``scale`` (d,)
    and, for ``l2``, the anchors' mean norm after centring (1 otherwise)."""

    kind: str
    mean: np.ndarray
    scale: np.ndarray
    norm: float = 1.0


def constant_std_threshold(dtype) -> float:
    """The standard deviation below which a dimension counts as constant: 10 machine epsilons of
    the anchors' own floating dtype (float32 1.19e-6, float64 2.2e-15; float64's for integers).

    The library decides this on its float32 tensors; deciding it after a cast to float64 (or with
    a fixed 1e-8) would divide float32 noise in a dead dimension up to unit variance.
    """
    dtype = np.dtype(dtype)
    eps = np.finfo(dtype).eps if np.issubdtype(dtype, np.floating) else np.finfo(np.float64).eps
    return float(CONSTANT_STD_EPS * eps)


def fit_scaling(kind: str, anchors: np.ndarray) -> Scaling:
    """Statistics of one space's anchors (N × d) for pre-processing ``kind``, computed in float64;
    pass the anchors in their own dtype, which sets the constant-dimension threshold."""
    raw = np.asarray(anchors)
    a = raw.astype(np.float64)
    d = a.shape[1]
    if kind == "none":
        return Scaling(kind, np.zeros(d), np.ones(d))
    mean = a.mean(axis=0)
    if kind == "center":
        return Scaling(kind, mean, np.ones(d))
    if kind == "standard":
        std = a.std(axis=0, ddof=1)
        return Scaling(kind, mean, np.where(std < constant_std_threshold(raw.dtype), 1.0, std))
    if kind == "l2":
        return Scaling(kind, mean, np.ones(d), float(np.linalg.norm(a - mean, axis=1).mean()))
    raise LatentgeoError(f"unknown pre-processing {kind!r}; allowed: {list(PREPROCESSING)}")


def apply_scaling(s: Scaling, x: np.ndarray) -> np.ndarray:
    """Pre-process rows ``x`` (n × d) into the normalised space."""
    z = (np.asarray(x, dtype=np.float64) - s.mean) / s.scale
    if s.kind == "l2":
        norms = np.linalg.norm(z, axis=1, keepdims=True)
        z = z / np.maximum(norms, np.finfo(np.float64).tiny)
    return z


def invert_scaling(s: Scaling, z: np.ndarray) -> np.ndarray:
    """Map normalised rows ``z`` (n × d) back into this space's units (used with the target's state)."""
    return np.asarray(z, dtype=np.float64) * (s.scale * s.norm) + s.mean


def pad_columns(x: np.ndarray, d: int) -> np.ndarray:
    """Append zero columns to reach width ``d`` (no-op if already ``d`` wide)."""
    if x.shape[1] > d:
        raise ValueError(f"cannot pad {x.shape[1]} columns down to {d}")
    return np.pad(x, ((0, 0), (0, d - x.shape[1])))


# --------------------------------------------------------------------------- closed-form maps


@dataclass(frozen=True)
class AffineMap:
    """ŷ = x W + b with ``weight`` (d_in × d_out) and ``bias`` (d_out,)."""

    weight: np.ndarray
    bias: np.ndarray

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(x, dtype=np.float64) @ self.weight + self.bias


def nearest_orthogonal(m: np.ndarray) -> np.ndarray:
    """U Vᵀ from the SVD of a square matrix: the orthogonal matrix nearest in Frobenius norm."""
    u, _, vt = np.linalg.svd(m)
    return u @ vt


def procrustes(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Orthogonal R (d × d) minimising ‖X R − Y‖_F: U Vᵀ of SVD(Xᵀ Y). X, Y are N × d."""
    return nearest_orthogonal(x.T @ y)


def least_squares(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """W (d_in × d_out) minimising ‖X W − Y‖_F (minimum-norm solution when under-determined)."""
    return np.linalg.lstsq(x, y, rcond=None)[0]


def affine_least_squares(x: np.ndarray, y: np.ndarray) -> AffineMap:
    """W, b minimising ‖X W + 1 bᵀ − Y‖_F, in closed form (least squares on [X 1])."""
    sol = least_squares(np.hstack([x, np.ones((x.shape[0], 1))]), y)
    return AffineMap(sol[:-1], sol[-1])


# --------------------------------------------------------------------------- ridge


def thin_svd(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """U (N × r), s (r,), Vᵀ (r × d) of X (N × d), keeping only the directions whose singular value
    is above least squares' cut-off (max(N, d) · eps · s_max, as ``np.linalg.lstsq``): at λ = 0 the
    ridge solution built from them is the minimum-norm least-squares one."""
    n, d = x.shape
    if min(n, d) == 0:
        return np.zeros((n, 0)), np.zeros(0), np.zeros((0, d))
    u, s, vt = np.linalg.svd(x, full_matrices=False)
    keep = s > max(n, d) * np.finfo(np.float64).eps * s[0]
    return u[:, keep], s[keep], vt[keep]


def ridge_factors(s: np.ndarray, lams: np.ndarray) -> np.ndarray:
    """(L × r) shrunk inverse singular values s / (s² + λ), one row per λ of ``lams`` (L,)."""
    return s / (s**2 + np.asarray(lams, dtype=np.float64)[:, None])


def ridge_from_svd(u: np.ndarray, s: np.ndarray, vt: np.ndarray, y: np.ndarray, lam: float) -> np.ndarray:
    """W = V diag(s / (s² + λ)) Uᵀ Y (d × d_out): the minimiser of ‖X W − Y‖² + λ‖W‖² from X's SVD."""
    return vt.T @ (ridge_factors(s, [lam])[0][:, None] * (u.T @ y))


def ridge(x: np.ndarray, y: np.ndarray, lam: float) -> np.ndarray:
    """W (d_in × d_out) minimising ‖X W − Y‖²_F + λ‖W‖²_F, no bias (float64, via the SVD of X)."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    return ridge_from_svd(*thin_svd(x), y, lam)


def cv_folds(n: int, k: int, seed: int) -> list[np.ndarray]:
    """``k`` disjoint validation folds covering rows 0..n−1 in a seeded random order (sizes differ
    by at most one)."""
    return np.array_split(np.random.default_rng(seed).permutation(n), k)


def ridge_fold_sse(
    x_fit: np.ndarray, y_fit: np.ndarray, x_val: np.ndarray, y_val: np.ndarray, lams: np.ndarray,
    *, intercept: bool,
) -> np.ndarray:
    """Validation sum of squared errors (L,) of the ridge map fitted on (x_fit, y_fit), for every
    λ > 0 of ``lams`` (L,), from one eigendecomposition of x_fit's smaller Gram matrix.

    The prediction is A diag(g) B with g = 1 / (μ + λ): in the dual form (n_fit ≤ d) from
    X_fit X_fitᵀ = Q diag(μ) Qᵀ, A = X_val X_fitᵀ Q and B = Qᵀ Y_fit; in the primal form from
    X_fitᵀ X_fit = Q diag(μ) Qᵀ, A = X_val Q and B = Qᵀ X_fitᵀ Y_fit. Then
    ‖Y_val − A diag(g) B‖² = ‖Y_val‖² − 2 gᵀc + gᵀ G g with c = rowsums((AᵀY_val) ∘ B) and
    G = (AᵀA) ∘ (B Bᵀ), so each λ costs O(r²) instead of a prediction. The Gram matrix's
    eigenvalues carry an absolute error of ~eps · μ_max, small beside λ ≥ 1e-8 μ_max (the grid's
    floor): with singular values spread over 1e-9 … 1 the errors matched an SVD-based brute force
    to 3e-10 relative. It is 2–3× faster than an SVD of X_fit; the chosen λ's map comes from one.
    ``intercept``: centre both sides on the fitting rows' means first (an unpenalised bias).
    """
    if intercept:
        mx, my = x_fit.mean(axis=0), y_fit.mean(axis=0)
        x_fit, x_val, y_fit, y_val = x_fit - mx, x_val - mx, y_fit - my, y_val - my
    if x_fit.shape[0] <= x_fit.shape[1]:
        mu, q = np.linalg.eigh(x_fit @ x_fit.T)
        a, b = (x_val @ x_fit.T) @ q, q.T @ y_fit
    else:
        mu, q = np.linalg.eigh(x_fit.T @ x_fit)
        a, b = x_val @ q, q.T @ (x_fit.T @ y_fit)
    g = 1.0 / (np.maximum(mu, 0.0) + np.asarray(lams, dtype=np.float64)[:, None])  # (L × r)
    c = np.einsum("ij,ij->i", a.T @ y_val, b)
    gram = (a.T @ a) * (b @ b.T)
    sse = np.sum(y_val**2) - 2.0 * g @ c + np.einsum("lr,rq,lq->l", g, gram, g)
    return np.maximum(sse, 0.0)  # exact SSE is ≥ 0; the expansion can round a hair below


def ridge_cv_mse(
    x: np.ndarray, y: np.ndarray, lams: np.ndarray, *, intercept: bool, folds: int = RIDGE_FOLDS, seed: int = 0
) -> np.ndarray:
    """K-fold cross-validated mean squared error (L,) per λ: every anchor is predicted once, by the
    map fitted on the other folds; the mean is over anchors and output dimensions."""
    total = np.zeros(len(lams))
    for val in cv_folds(len(x), folds, seed):
        fit = np.setdiff1d(np.arange(len(x)), val)
        total += ridge_fold_sse(x[fit], y[fit], x[val], y[val], lams, intercept=intercept)
    return total / max(1, y.size)


@dataclass(frozen=True)
class RidgeFit:
    """A ridge map and how its λ was chosen.

    ``lam`` is in the units of XᵀX of the pre-processed anchors; ``lam_relative`` = λ / s²_max (the
    largest eigenvalue of XᵀX, centred for the affine form), the grid's unit. ``grid`` (L,) holds
    the absolute λ tried, ascending, ``cv_mse`` (L,) their cross-validated MSE. ``effective_df`` =
    Σ s²/(s² + λ): the effective number of parameters per output dimension (rank of X at λ = 0).
    """

    map: AffineMap
    lam: float
    lam_relative: float
    grid: np.ndarray
    cv_mse: np.ndarray
    effective_df: float
    folds: int

    def record(self) -> dict:
        """The scalar facts of the fit, for a metrics record (the fold count is in the method's
        ``METHOD_FITS`` description)."""
        best = int(np.argmin(self.cv_mse))
        return {
            "ridge_lambda": self.lam,
            "ridge_lambda_relative": self.lam_relative,
            "ridge_effective_df": self.effective_df,
            "ridge_cv_mse": float(self.cv_mse[best]),
            "ridge_lambda_at_grid_edge": best in (0, len(self.grid) - 1),
        }


def fit_ridge(
    x: np.ndarray, y: np.ndarray, *, intercept: bool, seed: int = 0, folds: int = RIDGE_FOLDS,
    grid: tuple[float, ...] = RIDGE_GRID,
) -> RidgeFit:
    """Ridge map X (N × d_in) → Y (N × d_out), λ by ``folds``-fold cross-validation (folds seeded),
    in float64: one eigendecomposition per fold for the whole grid (:func:`ridge_fold_sse`), then
    one SVD for the chosen λ's map.

    λ is tried at ``grid`` × s²_max (s_max the largest singular value of the anchors, centred if
    ``intercept``); the smallest cross-validated MSE wins (ties: the smaller λ). With
    ``intercept`` the bias is not penalised: ridge on the centred anchors, b = ȳ − x̄ W. Columns
    that are zero on every anchor (the zero padding) are left out of the SVD: ridge gives them
    zero weights anyway.
    """
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if not all(v > 0 for v in grid):
        raise LatentgeoError(f"the ridge λ grid must be positive, got {list(grid)}")
    if len(x) < folds:
        raise LatentgeoError(f"ridge with {folds}-fold cross-validation needs at least {folds} anchors, got {len(x)}")
    cols_in, cols_out = np.flatnonzero(np.any(x != 0, axis=0)), np.flatnonzero(np.any(y != 0, axis=0))
    xs, ys = x[:, cols_in], y[:, cols_out]
    mx = xs.mean(axis=0) if intercept else np.zeros(xs.shape[1])
    my = ys.mean(axis=0) if intercept else np.zeros(ys.shape[1])
    u, s, vt = thin_svd(xs - mx)
    unit = float(s[0] ** 2) if s.size else 1.0
    lams = unit * np.asarray(grid, dtype=np.float64)
    cv = ridge_cv_mse(xs, ys, lams, intercept=intercept, folds=folds, seed=seed)
    best = int(np.argmin(cv))
    w_kept = ridge_from_svd(u, s, vt, ys - my, lams[best])
    weight = np.zeros((x.shape[1], y.shape[1]))
    weight[np.ix_(cols_in, cols_out)] = w_kept
    bias = np.zeros(y.shape[1])
    bias[cols_out] = my - mx @ w_kept
    df = float(np.sum(s**2 / (s**2 + lams[best])))
    return RidgeFit(AffineMap(weight, bias), float(lams[best]), float(grid[best]), lams, cv, df, folds)


@contextlib.contextmanager
def _single_thread():
    """Run small torch training loops on one thread: for these many tiny steps, intra-op threads
    cost more in synchronisation than they win (measured 15× slower with 2 threads on a busy
    2-core machine); the previous setting is restored afterwards."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def affine_gradient_descent(
    x: np.ndarray, y: np.ndarray, *, steps: int = 300, lr: float = 1e-3, seed: int = 0
) -> AffineMap:
    """The affine map trained as the translation library does: ``nn.Linear`` (default init from a
    seeded generator), Adam ``lr``, ``steps`` full-batch steps on the mean squared error."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        layer = torch.nn.Linear(x.shape[1], y.shape[1], dtype=torch.float64)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    opt = torch.optim.Adam(layer.parameters(), lr=lr)
    with _single_thread():
        for _ in range(steps):
            opt.zero_grad()
            torch.nn.functional.mse_loss(layer(xt), yt).backward()
            opt.step()
    with torch.no_grad():
        return AffineMap(layer.weight.T.numpy().copy(), layer.bias.numpy().copy())


def fit_affine_map(method: str, x: np.ndarray, y: np.ndarray, *, seed: int = 0) -> tuple[AffineMap, dict]:
    """The affine map of ``method`` (all but ``mlp``) from pre-processed, padded anchors X, Y, and
    what the fit chose (the ridge methods' λ; empty for the others). ``seed``: ``affine-sgd``'s
    initialisation and the ridge methods' folds."""
    zeros = np.zeros(y.shape[1])
    if method == "ortho":
        return AffineMap(procrustes(x, y), zeros), {}
    if method == "linear":
        return AffineMap(least_squares(x, y), zeros), {}
    if method == "lortho":
        return AffineMap(nearest_orthogonal(least_squares(x, y)), zeros), {}
    if method == "affine":
        return affine_least_squares(x, y), {}
    if method in RIDGE_METHODS:
        fit = fit_ridge(x, y, intercept=method == "affine-ridge", seed=seed)
        return fit.map, fit.record()
    if method == "affine-sgd":
        return affine_gradient_descent(x, y, seed=seed), {}
    raise LatentgeoError(f"{method!r} is not an affine method")


# --------------------------------------------------------------------------- MLP stitch


@dataclass(frozen=True)
class MLPOptions:
    """Training settings of the MLP stitch. ``depth`` counts linear layers (≥ 1; 1 is affine);
    ``width`` None means max(d_in, d_out). ``holdout`` is the fraction of anchors kept out for early
    stopping, which stops after ``patience`` epochs without a better held-out MSE."""

    depth: int = 2
    width: int | None = None
    epochs: int = 300
    batch_size: int = 64
    lr: float = 1e-3
    holdout: float = 0.1
    patience: int = 20


def build_mlp(d_in: int, d_out: int, depth: int, width: int):
    """``depth`` linear layers with ReLU between them (float32)."""
    import torch

    dims = [d_in] + [width] * (depth - 1) + [d_out]
    layers: list = []
    for i in range(depth):
        layers.append(torch.nn.Linear(dims[i], dims[i + 1]))
        if i < depth - 1:
            layers.append(torch.nn.ReLU())
    return torch.nn.Sequential(*layers)


def train_mlp(x: np.ndarray, y: np.ndarray, options: MLPOptions = MLPOptions(), *, seed: int = 0):
    """Fit an MLP x ↦ y (N × d_in → N × d_out) with early stopping; returns the best network (eval).

    All randomness (initialisation, hold-out split, batch order) comes from ``seed``.
    """
    import torch

    if options.depth < 1:
        raise LatentgeoError(f"MLP depth {options.depth}; allowed: ≥ 1")
    n = x.shape[0]
    rng = np.random.default_rng(seed)
    order = rng.permutation(n)
    n_val = max(1, int(round(options.holdout * n)))
    if n - n_val < 1:
        raise LatentgeoError(f"{n} anchors leave none to train the MLP on after the hold-out part")
    val, train = order[:n_val], order[n_val:]
    xt = torch.from_numpy(np.asarray(x, dtype=np.float32))
    yt = torch.from_numpy(np.asarray(y, dtype=np.float32))
    width = options.width or max(x.shape[1], y.shape[1])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = build_mlp(x.shape[1], y.shape[1], options.depth, width)
    with _single_thread():
        best_state = _train_loop(net, xt, yt, train, val, options, rng)
    net.load_state_dict(best_state)
    return net.eval()


def _train_loop(net, xt, yt, train: np.ndarray, val: np.ndarray, options: MLPOptions, rng) -> dict:
    """Mini-batch Adam epochs over ``train`` rows; returns the state with the best ``val`` MSE."""
    import torch

    opt = torch.optim.Adam(net.parameters(), lr=options.lr)
    loss_fn = torch.nn.functional.mse_loss
    best, best_state, stale = np.inf, None, 0
    for _ in range(options.epochs):
        net.train()
        perm = train[rng.permutation(len(train))]
        for start in range(0, len(perm), options.batch_size):
            idx = torch.from_numpy(perm[start: start + options.batch_size])
            opt.zero_grad()
            loss_fn(net(xt[idx]), yt[idx]).backward()
            opt.step()
        net.eval()
        with torch.no_grad():
            val_loss = float(loss_fn(net(xt[val]), yt[val]))
        if val_loss < best - 1e-12:
            best, stale = val_loss, 0
            best_state = {k: v.clone() for k, v in net.state_dict().items()}
        else:
            stale += 1
            if stale >= options.patience:
                break
    return best_state


def apply_mlp(net, x: np.ndarray) -> np.ndarray:
    """Run the MLP on rows ``x`` (float32 inside), returning float64."""
    import torch

    with torch.no_grad():
        return net(torch.from_numpy(np.asarray(x, dtype=np.float32))).numpy().astype(np.float64)


# --------------------------------------------------------------------------- the estimator


@dataclass
class Translator:
    """Fit a translation on parallel anchors, then translate any source rows into the target space.

    >>> t = Translator("ortho", "standard").fit(source_anchors, target_anchors)
    >>> y_hat = t.transform(source_rows)   # (n, d_target) float64
    """

    method: str = "ortho"
    preprocess: str = "standard"
    seed: int = 0
    mlp: MLPOptions = field(default_factory=MLPOptions)
    #: after ``fit``: what the fit chose (the ridge methods' λ and its cross-validation), else {}
    fit_record_: dict = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self):
        check_method(self.method, self.preprocess)

    def fit(self, source: np.ndarray, target: np.ndarray) -> Translator:
        """``source`` (N × d_s) and ``target`` (N × d_t): row i of each is the same item. Pass them
        in their own dtype: it sets standard scaling's constant-dimension threshold."""
        source, target = np.asarray(source), np.asarray(target)
        if source.ndim != 2 or target.ndim != 2 or source.shape[0] != target.shape[0]:
            raise LatentgeoError(f"anchors must be paired 2-D arrays, got {source.shape} and {target.shape}")
        if source.shape[0] < MIN_ANCHORS[self.method]:
            raise LatentgeoError(
                f"method {self.method!r} needs at least {MIN_ANCHORS[self.method]} anchors, got {source.shape[0]}"
            )
        self.source_scaling_ = fit_scaling(self.preprocess, source)
        self.target_scaling_ = fit_scaling(self.preprocess, target)
        self.d_target_ = target.shape[1]
        x = apply_scaling(self.source_scaling_, source)
        y = apply_scaling(self.target_scaling_, target)
        if self.method == "mlp":
            self.map_, self.fit_record_ = train_mlp(x, y, self.mlp, seed=self.seed), {}
        else:
            self.width_ = max(x.shape[1], y.shape[1])
            self.map_, self.fit_record_ = fit_affine_map(
                self.method, pad_columns(x, self.width_), pad_columns(y, self.width_), seed=self.seed
            )
        return self

    def transform(self, source: np.ndarray) -> np.ndarray:
        """Translate source rows (n × d_s) into the target space: (n × d_t) float64."""
        if not hasattr(self, "map_"):
            raise LatentgeoError("Translator.transform called before fit")
        x = apply_scaling(self.source_scaling_, source)
        if self.method == "mlp":
            z = apply_mlp(self.map_, x)
        else:
            z = self.map_(pad_columns(x, self.width_))[:, : self.d_target_]
        return invert_scaling(self.target_scaling_, z)


def translate(
    source_anchors: np.ndarray,
    target_anchors: np.ndarray,
    source: np.ndarray,
    method: str = "ortho",
    preprocess: str = "standard",
    *,
    seed: int = 0,
    mlp: MLPOptions | None = None,
) -> np.ndarray:
    """One-call form: fit on the anchors and translate ``source`` rows into the target space."""
    t = Translator(method, preprocess, seed=seed, mlp=mlp or MLPOptions())
    return t.fit(source_anchors, target_anchors).transform(source)
