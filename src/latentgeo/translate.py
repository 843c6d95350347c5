"""Latent space translation: maps from one embedding space to another, fitted on parallel anchors.

Two tiers, as in the translation paper's library: small pure functions that compute a state from
anchors (a pre-processing record, an affine map, a trained MLP), and a thin :class:`Translator`
with ``fit``/``transform`` composing them:

    source x ──preprocess(source anchors)──► zero-pad ──► map ──► truncate ──► postprocess(target
    anchors) ──► ŷ in the target space

Methods (``config.TRANSLATION_METHODS``), X the pre-processed source anchors (N × d), Y the target's:

* ``ortho``   R = U Vᵀ from the SVD of Xᵀ Y (orthogonal Procrustes), ŷ = x R.
* ``linear``  least squares X W ≈ Y, no bias.
* ``lortho``  the least-squares W projected onto the nearest orthogonal matrix (U Vᵀ of its SVD).
* ``affine``  least squares [X 1] [W; b] ≈ Y: the closed form with a bias.
* ``affine-sgd`` the same affine map trained as the library does: ``nn.Linear``, Adam lr 1e-3,
  300 full-batch steps on the MSE, seeded.
* ``mlp``     a ReLU network of ``depth`` linear layers (width max(d_in, d_out) by default),
  Adam on the MSE, early stopping on a held-out part of the anchors, seeded.

Pre-processing (``config.PREPROCESSING``), each fitted on one space's anchors:

* ``none``; ``center`` (subtract the anchor mean; output + the target anchors' mean);
* ``standard`` per dimension, N−1 standard deviation, a near-zero deviation replaced by 1;
  output × target std + target mean;
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

from .config import PREPROCESSING, TRANSLATION_METHODS
from .errors import LatentgeoError

# A standard deviation below this is treated as a constant dimension (scale 1), as the library does.
NEAR_ZERO_STD = 1e-8
# Minimum anchors each method needs: N−1 std needs 2; the MLP holds some out for early stopping.
MIN_ANCHORS = {"ortho": 2, "linear": 2, "lortho": 2, "affine": 2, "affine-sgd": 2, "mlp": 10}


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


def fit_scaling(kind: str, anchors: np.ndarray) -> Scaling:
    """Statistics of one space's anchors (N × d) for pre-processing ``kind``."""
    a = np.asarray(anchors, dtype=np.float64)
    d = a.shape[1]
    if kind == "none":
        return Scaling(kind, np.zeros(d), np.ones(d))
    mean = a.mean(axis=0)
    if kind == "center":
        return Scaling(kind, mean, np.ones(d))
    if kind == "standard":
        std = a.std(axis=0, ddof=1)
        return Scaling(kind, mean, np.where(std < NEAR_ZERO_STD, 1.0, std))
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


def fit_closed_form(method: str, x: np.ndarray, y: np.ndarray, *, seed: int = 0) -> AffineMap:
    """The affine map of ``method`` (all but ``mlp``) from pre-processed, padded anchors X, Y."""
    zeros = np.zeros(y.shape[1])
    if method == "ortho":
        return AffineMap(procrustes(x, y), zeros)
    if method == "linear":
        return AffineMap(least_squares(x, y), zeros)
    if method == "lortho":
        return AffineMap(nearest_orthogonal(least_squares(x, y)), zeros)
    if method == "affine":
        return affine_least_squares(x, y)
    if method == "affine-sgd":
        return affine_gradient_descent(x, y, seed=seed)
    raise LatentgeoError(f"{method!r} is not a closed-form method")


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

    def __post_init__(self):
        check_method(self.method, self.preprocess)

    def fit(self, source: np.ndarray, target: np.ndarray) -> Translator:
        """``source`` (N × d_s) and ``target`` (N × d_t): row i of each is the same item."""
        source, target = np.asarray(source, np.float64), np.asarray(target, np.float64)
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
            self.map_ = train_mlp(x, y, self.mlp, seed=self.seed)
        else:
            self.width_ = max(x.shape[1], y.shape[1])
            self.map_ = fit_closed_form(
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
