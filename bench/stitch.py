"""Closed-form vs. gradient-descent affine translation on 5,000 × 768 anchors.

The translation library fits its affine map by Adam (lr 1e-3, 300 full-batch steps); the closed
form is one least-squares solve. Both run here in the same process on the same synthetic pair
(a random affine map of 768-d anchors plus a mild non-linearity and noise, standard scaling), and
are judged on 1,000 held-out rows. Prints seconds and held-out MSE of each, and their ratios.

    python bench/stitch.py [--rows 5000] [--dim 768] [--repeats 3]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from latentgeo.translate import Translator


def synthetic_pair(rows: int, dim: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, dim)) @ rng.normal(size=(dim, dim)) / np.sqrt(dim)
    w = rng.normal(size=(dim, dim)) / np.sqrt(dim)
    y = x @ w + rng.normal(size=dim) + 0.1 * np.tanh(x) + 0.05 * rng.normal(size=(rows, dim))
    return x.astype(np.float32), y.astype(np.float32)


def timed_fit(method: str, xa, ya, xe, ye, repeats: int) -> tuple[float, float]:
    """Best-of-``repeats`` wall seconds of fit + transform, and the held-out MSE."""
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        pred = Translator(method, "standard", seed=0).fit(xa, ya).transform(xe)
        best = min(best, time.perf_counter() - start)
    return best, float(np.mean((pred - ye) ** 2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5000, help="anchor rows")
    parser.add_argument("--dim", type=int, default=768)
    parser.add_argument("--eval", type=int, default=1000, help="held-out rows")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    x, y = synthetic_pair(args.rows + args.eval, args.dim)
    xa, ya, xe, ye = x[: args.rows], y[: args.rows], x[args.rows:], y[args.rows:]
    mean_mse = float(np.mean((ye - ya.mean(axis=0)) ** 2))
    results = {m: timed_fit(m, xa, ya, xe, ye, args.repeats) for m in ("affine", "affine-sgd")}
    print(f"anchors {args.rows} × {args.dim}, {args.eval} held-out rows, standard scaling, best of {args.repeats}")
    print(f"{'method':<12}{'seconds':>10}{'held-out MSE':>15}{'MSE / mean est.':>18}")
    for m, (sec, mse) in results.items():
        print(f"{m:<12}{sec:>10.3f}{mse:>15.5f}{mse / mean_mse:>18.4f}")
    (t_cf, e_cf), (t_gd, e_gd) = results["affine"], results["affine-sgd"]
    print(f"gradient descent / closed form: time × {t_gd / t_cf:.1f}, MSE × {e_gd / e_cf:.2f}")


if __name__ == "__main__":
    main()
