"""Benchmark: every measure on a paper-sized sample (150,000 × 512 float32) with PQ and LSQ.

The sample is a seeded Gaussian mixture (64 components of different spreads along random axes, so
cells fill unevenly, as token vectors do). Prints the time of each step — training, encoding and
the cell measures of each quantizer, then every spread measure — the total, and where the time
goes. As a baseline in the same process it also times the cell measures written as per-cell Python
loops (the obvious implementation) against the vectorised ones, on the same LSQ codes.

    python bench/measures.py [--n 150000] [--d 512] [--train-size 32768|all] [--quantizers pq,lsq]

Target: the whole set within 2 minutes on the 2-core development machine. Timings on shared
machines swing (2× was seen between identical runs).
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from latentgeo.measures import DEFAULT_TRAIN_SIZE, cells, measure_space
from latentgeo.measures import quantizers as qz


def gaussian_mixture(n: int, d: int, components: int = 64, seed: int = 0) -> np.ndarray:
    """(n, d) float32: seeded mixture of anisotropic Gaussians with random centres and scales."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=3.0, size=(components, d)).astype(np.float32)
    scales = rng.gamma(2.0, 0.5, size=(components, d)).astype(np.float32)  # per-axis spreads
    labels = rng.integers(0, components, size=n)
    X = rng.standard_normal(size=(n, d), dtype=np.float32)
    X *= scales[labels]
    X += centres[labels]
    return X


def loop_cell_measures(codes: np.ndarray, k: int) -> tuple[float, float, float]:
    """Baseline: corrected patchiness, point-count variance and KL with Python loops over cells."""
    n, m = codes.shape
    counts = [[0] * k for _ in range(m)]
    for j in range(m):
        for c in codes[:, j].tolist():
            counts[j][c] += 1
    flat = [c for row in counts for c in row]
    mean = sum(flat) / len(flat)
    var = sum((c - mean) ** 2 for c in flat) / len(flat)
    patch = (mean + var / mean - 1) / mean
    pcv = kl = 0.0
    for j in range(m):
        h = [c / n for c in counts[j]]
        odds = [x / (1 - x) * (k - 1) for x in h]
        mu = sum(odds) / k
        pcv += sum((o - mu) ** 2 for o in odds) / k / m
        kl += sum(x * np.log(x * k) for x in h if x > 0) / m
    return patch, pcv, kl


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=150_000)
    parser.add_argument("--d", type=int, default=512)
    parser.add_argument("--train-size", default=str(DEFAULT_TRAIN_SIZE))
    parser.add_argument("--quantizers", default="pq,lsq")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    train_size = "all" if args.train_size == "all" else int(args.train_size)

    t0 = time.perf_counter()
    X = gaussian_mixture(args.n, args.d, seed=args.seed)
    print(
        f"sample: {args.n} × {args.d} float32 Gaussian mixture ({time.perf_counter() - t0:.1f} s to make)"
    )

    t0 = time.perf_counter()
    report = measure_space(
        X, quantizers=args.quantizers, train_size=train_size, seed=args.seed, progress=False
    )
    wall = time.perf_counter() - t0
    inputs = report.record["inputs"]
    print(
        f"quantizers {inputs['quantizers']}: M = {inputs['m']}, k = {inputs['k']}, "
        f"trained on {inputs['train_size']} of {inputs['n']} vectors, all encoded\n"
    )

    cpu = report.cpu_timings
    print(f"{'step':<16}{'wall s':>9}{'share':>8}{'CPU s':>9}")
    for name, sec in report.timings.items():
        print(f"{name:<16}{sec:>9.2f}{sec / wall:>8.1%}{cpu[name]:>9.2f}")

    def group(suffix=None):
        keys = [k for k in report.timings if suffix is None or k.endswith(suffix)]
        return sum(report.timings[k] for k in keys), sum(cpu[k] for k in keys)

    groups = {
        "training": group("_train"),
        "encoding": group("_encode"),
        "cell measures": group("_cells"),
    }
    everything = group()
    groups["spread + TwoNN"] = tuple(
        a - sum(g[i] for g in groups.values()) for i, a in enumerate(everything)
    )
    print()
    for name, (sec, cpu_sec) in groups.items():
        print(f"{name:<16}{sec:>9.2f}{sec / wall:>8.1%}{cpu_sec:>9.2f}")
    print(
        f"{'total':<16}{wall:>9.2f}{'':>8}{everything[1]:>9.2f}   "
        f"target ≤ 120 s wall: {'met' if wall <= 120 else 'MISSED'}"
    )
    print(
        f"(CPU s ≥ wall s means the step ran on both cores; wall ≫ CPU means the machine was busy "
        f"with other work: load average {os.getloadavg()[0]:.1f} now on {os.cpu_count()} cores)"
    )

    # Baseline in the same process: the cell measures as per-cell Python loops, on LSQ codes.
    kind = "lsq" if "lsq" in inputs["quantizers"] else inputs["quantizers"].split(",")[0]
    q = qz.make_quantizer(kind, args.d, inputs["m"], inputs["nbits"], args.seed)
    qz.train_quantizer(q, X, qz.train_indices(len(X), 4096, args.seed))
    encoded = qz.encode_sample(q, kind, X[:50_000], inputs["m"], inputs["nbits"])
    k = inputs["k"]
    t0 = time.perf_counter()
    hist = cells.code_histograms(encoded.codes, k)
    fast = (
        cells.patchiness_corrected(hist),
        cells.point_count_variance(hist),
        cells.point_count_kl(hist),
    )
    t_fast = time.perf_counter() - t0
    t0 = time.perf_counter()
    slow = loop_cell_measures(encoded.codes, k)
    t_slow = time.perf_counter() - t0
    assert np.allclose(fast, slow, rtol=1e-9), (fast, slow)
    print(
        f"\ncell counts on 50,000 codes: vectorised {t_fast * 1e3:.1f} ms, per-cell loops "
        f"{t_slow * 1e3:.0f} ms ({t_slow / t_fast:.0f}× slower; same values)"
    )


if __name__ == "__main__":
    main()
