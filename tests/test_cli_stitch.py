"""``latentgeo stitch`` and the stitch metrics: values against plain references, bad inputs."""

from __future__ import annotations

import json

import numpy as np
import pytest

from latentgeo.cli import main
from latentgeo.translation.stitch import stitch, stitch_metrics, stitchability_measures

N, N_ANCHORS = 80, 50


@pytest.fixture
def files(tmp_path):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, size=N)
    centres = rng.normal(size=(3, 6)) * 3
    src = centres[labels] + rng.normal(size=(N, 6))
    tgt = np.tanh(src @ rng.normal(size=(6, 8))) + 0.1 * rng.normal(size=(N, 8))
    paths = {}
    for name, arr in (("s", src.astype(np.float32)), ("t", tgt.astype(np.float32)), ("l", labels)):
        paths[name] = tmp_path / f"{name}.npy"
        np.save(paths[name], arr)
    return tmp_path, paths


def ref_metrics(pred, y, anchor_mean):
    """Plain float64 reference of the reconstruction and retrieval metrics."""
    n, d = y.shape
    mse = sum(((pred[i] - y[i]) ** 2).sum() for i in range(n)) / (n * d)
    var = np.mean([np.var(y[:, j]) for j in range(d)])
    cos = [pred[i] @ y[i] / (np.linalg.norm(pred[i]) * np.linalg.norm(y[i])) for i in range(n)]
    ranks = []
    for i in range(n):
        sims = [pred[i] @ y[j] / (np.linalg.norm(pred[i]) * np.linalg.norm(y[j])) for j in range(n)]
        ranks.append(1 + sum(s > sims[i] for j, s in enumerate(sims) if j != i))
    return {
        "mse": mse,
        "r2": 1 - mse / var,
        "mse_rel_mean": mse / np.mean((y - anchor_mean) ** 2),
        "mse_rel_normal": mse / (np.mean(y**2) + 1),
        "cosine": np.mean(cos),
        "top1": np.mean(np.array(ranks) <= 1),
        "top5": np.mean(np.array(ranks) <= 5),
    }


def test_cli_writes_metrics_and_translated_rows(files, capsys):
    tmp, p = files
    out, translated = tmp / "res" / "m.json", tmp / "res" / "y.npy"
    rc = main([
        "stitch", "--source", str(p["s"]), "--target", str(p["t"]), "--anchors", str(N_ANCHORS),
        "--method", "affine", "--preprocess", "standard", "--out", str(out),
        "--translated", str(translated), "--labels", str(p["l"]), "--seed", "1",
    ])
    assert rc == 0
    assert "r2 =" in capsys.readouterr().out
    got = json.loads(out.read_text())
    src, tgt, labels = (np.load(p[k]) for k in "stl")
    want, pred = stitch(src, tgt, N_ANCHORS, "affine", "standard", labels, seed=1)
    y_hat = np.load(translated)
    assert y_hat.shape == (N - N_ANCHORS, 8) and y_hat.dtype == np.float32
    np.testing.assert_allclose(y_hat, pred, rtol=1e-6, atol=1e-6)
    for key, value in want.items():
        assert got[key] == pytest.approx(value), key
    assert got["method"] == "affine" and got["n_eval"] == N - N_ANCHORS and got["seed"] == 1
    for key in ("stitched_accuracy", "target_accuracy", "chance_accuracy"):
        assert 0.0 <= got[key] <= 1.0


def test_metrics_match_plain_reference(files):
    _, p = files
    src, tgt = np.load(p["s"]).astype(np.float64), np.load(p["t"]).astype(np.float64)
    got, pred = stitch(src, tgt, N_ANCHORS, "ortho", "l2")
    want = ref_metrics(pred, tgt[N_ANCHORS:], tgt[:N_ANCHORS].mean(axis=0))
    for key, value in want.items():
        assert got[key] == pytest.approx(value, rel=1e-10), key


def test_perfect_translation_and_classification(files):
    _, p = files
    src, labels = np.load(p["s"]).astype(np.float64), np.load(p["l"])
    q = np.linalg.qr(np.random.default_rng(1).normal(size=(6, 6)))[0]
    m = stitch_metrics(src, src @ q, N_ANCHORS, "ortho", "center", labels)
    assert m["r2"] == pytest.approx(1.0) and m["mse"] == pytest.approx(0.0, abs=1e-20)
    assert m["top1"] == 1.0 and m["cosine"] == pytest.approx(1.0)
    assert m["stitched_accuracy"] == m["target_accuracy"]


def test_stitchability_measures():
    rng = np.random.default_rng(2)
    base = rng.normal(size=(600, 10)) @ rng.normal(size=(10, 10))
    same = stitchability_measures(base, base, seed=0)
    assert set(same) == {"ortho_r2", "linear_r2", "linear_cka"}
    assert same["ortho_r2"] == pytest.approx(1.0) and same["linear_cka"] == pytest.approx(1.0)
    perturbed = base + 2.0 * rng.normal(size=base.shape)
    noisy = stitchability_measures(perturbed, base, seed=0)
    assert noisy["ortho_r2"] < same["ortho_r2"] and noisy["linear_cka"] < 1.0
    assert noisy["linear_r2"] >= noisy["ortho_r2"] - 1e-9  # least squares fits at least as well
    assert noisy == stitchability_measures(perturbed, base, seed=0)  # seeded subsample and split


BAD = [
    ("rows", {"t": "short"}, "row counts differ"),
    ("few-anchors", {"anchors": "1"}, "needs at least 2"),
    ("mlp-anchors", {"anchors": "5", "method": "mlp"}, "needs at least 10"),
    ("too-many-anchors", {"anchors": str(N)}, "at least one row must be left"),
    ("nan", {"s": "nan"}, "NaN"),
    ("method", {"method": "procrustes"}, "unknown method"),
    ("ridge-anchors", {"anchors": "4", "method": "affine-ridge"}, "needs at least 5"),
    ("seed", {"seed": "-1"}, "seed -1"),
    ("preprocess", {"preprocess": "zscore"}, "unknown pre-processing"),
    ("labels", {"labels": "short"}, "labels have"),
    ("one-d", {"s": "oned"}, "2-D"),
    ("missing", {"s": "missing"}, "not found"),
]


@pytest.mark.parametrize("case,change,message", BAD, ids=[b[0] for b in BAD])
def test_bad_inputs_exit_2_and_write_nothing(files, capsys, case, change, message):
    tmp, p = files
    src = np.load(p["s"])
    variants = {
        "short": lambda a: a[:-3],
        "nan": lambda a: np.where(np.arange(a.size).reshape(a.shape) == 7, np.nan, a),
        "oned": lambda a: a[:, 0],
    }
    args = {"s": p["s"], "t": p["t"], "labels": p["l"], "anchors": str(N_ANCHORS), "method": "ortho",
            "preprocess": "standard", "seed": "0"}
    for key, value in change.items():
        if key in ("s", "t", "labels") and value == "missing":
            args[key] = tmp / "absent.npy"
        elif key in ("s", "t", "labels"):
            base = np.load(args[key]) if key != "s" else src
            args[key] = tmp / f"bad_{key}.npy"
            np.save(args[key], variants[value](base))
        else:
            args[key] = value
    out_dir = tmp / "outputs"
    rc = main([
        "stitch", "--source", str(args["s"]), "--target", str(args["t"]), "--anchors", args["anchors"],
        "--method", args["method"], "--preprocess", args["preprocess"], "--labels", str(args["labels"]),
        "--out", str(out_dir / "m.json"), "--translated", str(out_dir / "y.npy"), "--seed", args["seed"],
    ])
    err = capsys.readouterr().err
    assert rc == 2
    assert message in err and "Traceback" not in err
    assert not out_dir.exists()


def test_existing_output_needs_overwrite(files, capsys):
    tmp, p = files
    out = tmp / "m.json"
    out.write_text("keep")
    argv = ["stitch", "--source", str(p["s"]), "--target", str(p["t"]), "--anchors", "20", "--out", str(out)]
    assert main(argv) == 2
    assert "already exists" in capsys.readouterr().err and out.read_text() == "keep"
    assert main(argv + ["--overwrite"]) == 0
    assert json.loads(out.read_text())["n_anchors"] == 20


def test_stitched_classifier_ignores_dead_target_dimensions():
    """Real encoders (all-MiniLM-L6-v2, all-mpnet-base-v2) have dimensions that are constant up to
    float noise. A translation's tiny error there must not decide the class, as it did when the
    target classifier standardised every dimension (stitched accuracy fell to chance)."""
    rng = np.random.default_rng(3)
    n, n_anchors, d = 600, 300, 16
    labels = rng.integers(0, 4, size=n)
    target = rng.normal(size=(4, d))[labels] + 0.5 * rng.normal(size=(n, d))
    target[:, :2] = 1e-9 * rng.normal(size=(n, 2))  # two dead dimensions
    rotation = np.linalg.qr(rng.normal(size=(d, d)))[0]
    source = target @ rotation + 0.05 * rng.normal(size=(n, d))  # a noisy rotation of the target
    m = stitch_metrics(source, target, n_anchors, "ortho", "center", labels, seed=0)
    assert m["target_accuracy"] > 0.9
    assert m["stitched_accuracy"] > m["target_accuracy"] - 0.05


def test_cli_ridge_records_the_chosen_lambda(files, capsys):
    """--method affine-ridge: the record names the fit, holds the cross-validated λ and equals
    `stitch` with the same seed; the closed-form methods carry no ridge keys."""
    tmp, p = files
    out = tmp / "ridge.json"
    argv = ["stitch", "--source", str(p["s"]), "--target", str(p["t"]), "--anchors", str(N_ANCHORS),
            "--method", "affine-ridge", "--preprocess", "standard", "--out", str(out), "--seed", "3"]
    assert main(argv) == 0
    assert "ridge_lambda =" in capsys.readouterr().out
    got = json.loads(out.read_text())
    want, _ = stitch(np.load(p["s"]), np.load(p["t"]), N_ANCHORS, "affine-ridge", "standard", seed=3)
    assert got["fitted_by"] == "closed form: ridge, unpenalised bias, λ by 5-fold CV"
    for key in ("ridge_lambda", "ridge_lambda_relative", "ridge_effective_df", "ridge_cv_mse", "r2"):
        assert got[key] == pytest.approx(want[key]), key
    assert got["ridge_lambda"] > 0 and got["ridge_lambda_at_grid_edge"] is False
    plain = stitch_metrics(np.load(p["s"]), np.load(p["t"]), N_ANCHORS, "affine", "standard")
    assert plain["fitted_by"] == "closed form: least squares with bias"
    assert not any(k.startswith("ridge_") for k in plain)
    sgd = stitch_metrics(np.load(p["s"]), np.load(p["t"]), N_ANCHORS, "affine-sgd", "standard")
    assert sgd["fitted_by"].startswith("gradient descent: Adam")
