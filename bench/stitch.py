"""Translation fits: closed-form vs. gradient-descent affine, and what each method adds to the stage.

Default: the closed-form affine map (``affine``: one least-squares solve) against the translation
library's Adam fit of the same model (``affine-sgd``: lr 1e-3, 300 full-batch steps) on 5,000 × 768
synthetic anchors (a random affine map plus a mild non-linearity and noise, standard scaling),
judged on 1,000 held-out rows. Prints seconds and held-out MSE of each, and their ratios.

``--grid``: the stitching stage's fits, timed per method, on the default profile's shapes: every
ordered pair of its encoders (synthetic vectors of their dimensions, or real ones from
``--embeddings DIR/<encoder>.npy``, those present), 1,000 rows, 500 anchors, both pre-processings, then the anchor
sweep's smaller counts (the largest is reused from the grid), one BLAS thread as the stage runs
them. The stage fits the unlabelled corpus grid too, with the same shapes: it costs as much again
as the labelled grid.

    python bench/stitch.py [--rows 5000] [--dim 768] [--repeats 3]
    python bench/stitch.py --grid [--methods affine linear-ridge affine-ridge] [--embeddings DIR]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from latentgeo.translation.methods import METHOD_FITS
from latentgeo.translation.translate import Translator

# Output widths of the default profile's encoders (results/stitching/metrics.json "dims").
STAGE_DIMS = {"minilm-l6": 384, "paraphrase-minilm-l3": 384, "mpnet-base": 768, "wordllama": 256, "spacy-md": 300}


def synthetic_pair(rows: int, dim: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, dim)) @ rng.normal(size=(dim, dim)) / np.sqrt(dim)
    w = rng.normal(size=(dim, dim)) / np.sqrt(dim)
    y = x @ w + rng.normal(size=dim) + 0.1 * np.tanh(x) + 0.05 * rng.normal(size=(rows, dim))
    return x.astype(np.float32), y.astype(np.float32)


def synthetic_encoders(dims: dict[str, int], rows: int, seed: int = 0) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Float32 'encoders' sharing a 64-d latent (5 topics) through different random non-linear
    maps plus noise, each with two near-dead dimensions (std ~1e-7, as real sentence encoders have),
    and the topic of each row (the labels)."""
    rng = np.random.default_rng(seed)
    topics = rng.integers(0, 5, rows)
    latent = rng.normal(size=(5, 64))[topics] + rng.normal(size=(rows, 64))
    out = {}
    for name, d in dims.items():
        v = np.tanh(latent @ rng.normal(size=(64, d)) / 8) + 0.3 * rng.normal(size=(rows, d))
        v[:, :2] = 0.05 + 1e-7 * rng.normal(size=(rows, 2))
        out[name] = v.astype(np.float32)
    return out, topics


def timed_fit(method: str, xa, ya, xe, ye, repeats: int) -> tuple[float, float]:
    """Best-of-``repeats`` wall seconds of fit + transform, and the held-out MSE."""
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        pred = Translator(method, "standard", seed=0).fit(xa, ya).transform(xe)
        best = min(best, time.perf_counter() - start)
    return best, float(np.mean((pred - ye) ** 2))


def affine_vs_sgd(args: argparse.Namespace) -> None:
    x, y = synthetic_pair(args.rows + args.eval, args.dim)
    xa, ya, xe, ye = x[: args.rows], y[: args.rows], x[args.rows:], y[args.rows:]
    mean_mse = float(np.mean((ye - ya.mean(axis=0)) ** 2))
    results = {m: timed_fit(m, xa, ya, xe, ye, args.repeats) for m in ("affine", "affine-sgd")}
    print(f"anchors {args.rows} × {args.dim}, {args.eval} held-out rows, standard scaling, best of {args.repeats}")
    print(f"{'method':<12}{'seconds':>10}{'held-out MSE':>15}{'MSE / mean est.':>18}  fitted by")
    for m, (sec, mse) in results.items():
        print(f"{m:<12}{sec:>10.3f}{mse:>15.5f}{mse / mean_mse:>18.4f}  {METHOD_FITS[m]}")
    (t_cf, e_cf), (t_gd, e_gd) = results["affine"], results["affine-sgd"]
    print(f"gradient descent / closed form: time × {t_gd / t_cf:.1f}, MSE × {e_gd / e_cf:.2f}")


def stage_grid_cost(args: argparse.Namespace) -> None:
    from threadpoolctl import threadpool_limits

    from latentgeo.translation.experiments import anchor_sweep, stitching_grid

    if args.embeddings:
        paths = {n: os.path.join(args.embeddings, f"{n}.npy") for n in STAGE_DIMS}
        vectors = {n: np.load(path) for n, path in paths.items() if os.path.isfile(path)}
        labels = np.load(os.path.join(args.embeddings, os.pardir, "labels.npy"))
        source = f"real embeddings from {args.embeddings}"
    else:
        vectors, labels = synthetic_encoders(STAGE_DIMS, args.texts)
        source = "synthetic float32 vectors of the encoders' widths"
    n_pairs = len(vectors) * (len(vectors) - 1)
    sweep_counts = [c for c in args.sweep if c < args.anchors] + [args.anchors]
    print(f"{source}: {n_pairs} ordered pairs, {len(labels)} rows, {args.anchors} anchors, "
          f"pre-processing {args.preprocess}, sweep {sweep_counts} (largest reused); load "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print("CPU seconds of this process (one BLAS thread: wall time on an idle machine), wall in brackets")
    print(f"{'method':<14}{'grid':>15}{'per fit':>9}{'sweep':>15}{'stage':>9}{'mse/mean':>10}{'stitched':>10}"
          f"{'median λ/s²':>13}")
    for m in args.methods:
        with threadpool_limits(limits=1, user_api="blas"):
            cpu, wall = time.process_time(), time.perf_counter()
            grid = stitching_grid(vectors, labels, [m], args.preprocess, args.anchors, 0, progress=False)
            c_grid, w_grid = time.process_time() - cpu, time.perf_counter() - wall
            cpu, wall = time.process_time(), time.perf_counter()
            anchor_sweep(vectors, labels, [m], args.preprocess[0], sweep_counts, 0, grid=grid, progress=False)
            c_sweep, w_sweep = time.process_time() - cpu, time.perf_counter() - wall
        lam = grid["ridge_lambda_relative"].median() if "ridge_lambda_relative" in grid else float("nan")
        # the stage: the labelled grid, the sweep, and the corpus grid (same shapes as the first)
        print(f"{m:<14}{c_grid:>7.1f} ({w_grid:>5.1f}){c_grid / len(grid):>9.2f}{c_sweep:>7.1f} ({w_sweep:>5.1f})"
              f"{2 * c_grid + c_sweep:>9.1f}{grid['mse_rel_mean'].median():>10.3f}"
              f"{grid['stitched_accuracy'].mean():>10.3f}{lam:>13.2g}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5000, help="anchor rows (affine vs. Adam)")
    parser.add_argument("--dim", type=int, default=768)
    parser.add_argument("--eval", type=int, default=1000, help="held-out rows (affine vs. Adam)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--grid", action="store_true", help="time the stitching stage's fits per method instead")
    parser.add_argument("--methods", nargs="+", default=["affine", "linear-ridge", "affine-ridge"])
    parser.add_argument("--embeddings", help="folder of <encoder>.npy (and ../labels.npy) from a stage run")
    parser.add_argument("--texts", type=int, default=1000, help="rows of the synthetic encoders")
    parser.add_argument("--anchors", type=int, default=500)
    parser.add_argument("--sweep", type=int, nargs="+", default=[25, 50, 100, 200])
    parser.add_argument("--preprocess", nargs="+", default=["standard", "l2"])
    args = parser.parse_args()
    if args.grid:
        stage_grid_cost(args)
    else:
        affine_vs_sgd(args)


if __name__ == "__main__":
    main()
