"""The measures stage: record shape, determinism, sidecar, CLI and bad inputs."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from latentgeo.cli import main
from latentgeo.io import read_json
from latentgeo.geometry.measures.compute import SPREAD_MEASURES, compute_measures, measures_table
from latentgeo.stages.measures import measures_file

CELL_MEASURES = {
    "reconstruction_error",
    "reconstruction_iqr",
    "reconstruction_skew",
    "under_mu",
    "under_mu2",
    "point_count_variance",
    "point_count_kl",
    "centroids",
    "point_dist",
    "patchiness",
    "patchiness_corrected",
}
FAST = ["--nbits", "4", "--quiet"]  # k = 16 keeps LSQ to a fraction of a second


def make_sample(n=600, d=16, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(n, d)) * rng.gamma(2.0, 1.0, size=d) + 0.5).astype(np.float32)


@pytest.fixture
def npy(tmp_path):
    path = tmp_path / "toy-a0-s1.npy"
    np.save(path, make_sample())
    return path


def test_record_has_every_measure_as_a_finite_number():
    rec = compute_measures(make_sample(), quantizers=("pq", "lsq", "rq"), nbits=4, progress=False)
    assert set(rec) == {"inputs", "pq", "lsq", "rq", "spread"}
    for kind in ("pq", "lsq", "rq"):
        assert set(rec[kind]) == CELL_MEASURES
    assert set(rec["spread"]) == set(SPREAD_MEASURES)
    for section in ("pq", "lsq", "rq", "spread"):
        assert all(isinstance(v, float) and math.isfinite(v) for v in rec[section].values())
    inputs = rec["inputs"]
    assert (inputs["n"], inputs["d"], inputs["m"], inputs["nbits"], inputs["k"]) == (
        600,
        16,
        4,
        4,
        16,
    )
    assert inputs["quantizers"] == "pq,lsq,rq" and inputs["train_size"] == 600


def test_train_size_subsample_is_recorded():
    rec = compute_measures(
        make_sample(), quantizers=("pq",), nbits=4, train_size=200, progress=False
    )
    assert rec["inputs"]["train_size"] == 200 and rec["inputs"]["train_size_option"] == 200


@pytest.mark.slow  # measures the sample twice
def test_measures_file_is_byte_deterministic_and_copies_the_model(tmp_path, npy):
    model = {"model_id": "toy-a0-s1", "alpha": 0.0, "family": "base"}
    npy.with_suffix(".json").write_text(json.dumps({"model": model, "n_vectors": 600}))
    a, b, c = tmp_path / "a.json", tmp_path / "b.json", tmp_path / "c.json"
    measures_file(npy, a, nbits=4, seed=3, progress=False)
    measures_file(npy, b, nbits=4, seed=3, progress=False)
    assert a.read_bytes() == b.read_bytes()
    rec = read_json(a)
    assert rec["model"] == model
    assert rec["inputs"]["source"] == npy.name and len(rec["inputs"]["source_sha256"]) == 64
    assert "timings_s" not in rec
    measures_file(npy, c, nbits=4, seed=4, progress=False)
    assert read_json(c)["lsq"] != rec["lsq"]  # the seed reaches the quantizers


@pytest.mark.slow  # measures the sample under several thread counts
def test_record_does_not_depend_on_the_thread_count():
    import faiss

    before = faiss.omp_get_max_threads()
    try:
        records = []
        for threads in (1, 2):
            faiss.omp_set_num_threads(threads)
            records.append(
                compute_measures(
                    make_sample(1000), quantizers=("lsq", "rq"), nbits=4, progress=False
                )
            )
    finally:
        faiss.omp_set_num_threads(before)
    assert records[0] == records[1]


def test_no_sidecar_no_model(tmp_path, npy):
    report = measures_file(npy, tmp_path / "m.json", quantizers="pq", nbits=4, progress=False)
    assert "model" not in report.record
    assert report.histograms["pq"].shape == (4, 16) and report.histograms["pq"].sum() == 4 * 600
    steps = {"pq_train", "pq_wait", "pq_encode", "pq_point_dist", "pq_cells", "distinct_rows", "twonn"}
    assert steps <= set(report.timings) and set(report.cpu_timings) == set(report.timings)
    table = measures_table(report.record)
    assert list(table.columns) == ["pq", "spread"] and table.loc["patchiness", "pq"] > 0
    assert list(table.index[:2]) == ["reconstruction_error", "reconstruction_iqr"]
    assert table.index[-1] == "twonn_id" and table.shape == (17, 2)


def test_cli_defaults_are_the_package_constants():
    from latentgeo.cli.commands import measures as command
    from latentgeo.geometry.measures.compute import DEFAULT_TRAIN_SIZE
    from latentgeo.geometry.measures.quantizers import PAPER_SEED

    assert command.DEFAULT_TRAIN_SIZE == DEFAULT_TRAIN_SIZE
    assert command.DEFAULT_SEED == PAPER_SEED == 1234


def test_cli_writes_the_record(tmp_path, npy, capsys):
    out = tmp_path / "res" / "m.json"
    rc = main(
        [
            "measures",
            "--embeddings",
            str(npy),
            "--out",
            str(out),
            "--quantizers",
            "pq,rq",
            "--m",
            "2",
            "--seed",
            "1",
            "--train-size",
            "all",
            *FAST,
        ]
    )
    assert rc == 0 and "wrote" in capsys.readouterr().out
    rec = read_json(out)
    assert set(rec) == {"inputs", "pq", "rq", "spread"} and rec["inputs"]["m"] == 2
    assert main(["measures", "--embeddings", str(npy), "--out", str(out), *FAST]) == 2
    assert "already exists" in capsys.readouterr().err
    assert (
        main(["measures", "--embeddings", str(npy), "--out", str(out), "--overwrite", *FAST]) == 0
    )


def _bad(rows, d=16):
    return make_sample(rows, d)


def _with(value):
    x = make_sample()
    x[7, 3] = value
    return x


def _zero_row():
    x = make_sample()
    x[5] = 0
    return x


@pytest.mark.parametrize(
    ("array", "extra", "message"),
    [
        (lambda: _with(np.nan), [], "NaN"),
        (lambda: _with(np.inf), [], "infinite"),
        (lambda: np.ones((600, 16), np.float32), [], "identical"),
        (lambda: _bad(10), [], "fewer than k"),
        (lambda: np.arange(600, dtype=np.float32), [], "2-D"),
        (lambda: np.zeros((0, 16), np.float32), [], "empty"),
        (lambda: _bad(600, d=18), ["--quantizers", "pq"], "not divisible by m"),
        (lambda: _zero_row(), [], "all zeros"),
        (lambda: make_sample().astype(np.float64) * 1e300, [], "overflow float32"),
        (lambda: np.array([["a", "b"]] * 600), [], "numeric"),
        (lambda: make_sample(), ["--quantizers", "pq,xyz"], "unknown quantizer"),
        (lambda: make_sample(), ["--train-size", "8"], "below k"),
        (lambda: make_sample(), ["--m", "20", "--nbits", "4"], "bits per code"),
    ],
)
def test_cli_bad_inputs_exit_2_and_write_nothing(tmp_path, capsys, array, extra, message):
    npy = tmp_path / "x.npy"
    np.save(npy, array())
    out = tmp_path / "m.json"
    rc = main(["measures", "--embeddings", str(npy), "--out", str(out), *FAST, *extra])
    err = capsys.readouterr().err
    assert rc == 2 and message in err and "Traceback" not in err
    assert not out.exists() and list(tmp_path.iterdir()) == [npy]


def test_cli_missing_file(tmp_path, capsys):
    out = tmp_path / "m.json"
    rc = main(["measures", "--embeddings", str(tmp_path / "nope.npy"), "--out", str(out), *FAST])
    assert rc == 2 and "not found" in capsys.readouterr().err and not out.exists()


def test_plot_code_histograms():
    import matplotlib

    matplotlib.use("Agg")
    from latentgeo.analysis.measure_plots import plot_code_histograms

    fig = plot_code_histograms(np.arange(12).reshape(3, 4), title="toy")
    assert len(fig.axes[0].lines) == 4  # three codebooks and the even-use line
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_reference_adds_the_stitchability_section(npy, tmp_path):
    X = np.load(npy)
    rotated = tmp_path / "rotated.npy"
    q, _ = np.linalg.qr(np.random.default_rng(1).normal(size=(X.shape[1], X.shape[1])))
    np.save(rotated, (X @ q).astype(np.float32))
    out = tmp_path / "m.json"
    measures_file(npy, out, quantizers=("pq",), nbits=4, progress=False, reference=rotated)
    rec = read_json(out)
    # A rotation of the base is perfectly stitchable: ortho R² = 1, linear CKA = 1.
    assert rec["stitch"]["ortho_r2"] == pytest.approx(1.0, abs=1e-4)
    assert rec["stitch"]["linear_cka"] == pytest.approx(1.0, abs=1e-6)
    assert rec["inputs"]["reference"] == "rotated.npy"
    noise = tmp_path / "noise.npy"
    np.save(noise, np.random.default_rng(2).normal(size=X.shape).astype(np.float32))
    measures_file(npy, out, quantizers=("pq",), nbits=4, progress=False, reference=noise, overwrite=True)
    assert read_json(out)["stitch"]["ortho_r2"] < 0.1


def test_reference_with_other_rows_is_refused_before_work(npy, tmp_path):
    short = tmp_path / "short.npy"
    np.save(short, np.load(npy)[:10])
    out = tmp_path / "m.json"
    with pytest.raises(Exception, match="same sequences"):
        measures_file(npy, out, nbits=4, progress=False, reference=short)
    assert not out.exists()


def test_several_quantizer_seeds_average_the_single_seed_runs():
    """quantizer_seeds = 3: each cell measure is the mean of the three single-seed runs (seeds
    s, s+1, s+2) and quantizer_seed_sd their sample SD; the other measures do not change."""
    X = make_sample(n=400)
    settings = dict(quantizers="pq,lsq", m=2, nbits=4, progress=False)
    runs = [compute_measures(X, seed=7 + i, **settings) for i in range(3)]
    both = compute_measures(X, seed=7, quantizer_seeds=3, **settings)
    assert both["inputs"]["quantizer_seeds"] == [7, 8, 9] and runs[0]["inputs"]["quantizer_seeds"] == [7]
    assert both["spread"] == runs[0]["spread"]
    for kind in ("pq", "lsq"):
        for name in CELL_MEASURES:
            values = [r[kind][name] for r in runs if r[kind][name] is not None]
            if not values:
                assert both[kind][name] is None
                continue
            assert both[kind][name] == pytest.approx(float(np.mean(values)), rel=1e-12, abs=1e-15)
            sd = both["quantizer_seed_sd"][kind][name]
            if len(values) > 1:
                assert sd == pytest.approx(float(np.std(values, ddof=1)), rel=1e-9, abs=1e-15)
            else:
                assert sd is None
    # The seeds really differ: patchiness moves with the k-means start alone.
    assert len({r["pq"]["patchiness"] for r in runs}) > 1
    assert "quantizer_seed_sd" not in runs[0]


def test_steps_run_once_per_quantizer_seed_add_up():
    """A step timed again (encoding, once per quantizer seed) adds to its total, in wall and CPU
    seconds, instead of keeping only the last seed's."""
    import time

    from latentgeo.geometry.measures.compute import _Steps

    steps = _Steps(total=3, progress=False)
    for pause in (0.05, 0.07):
        with steps.step("encode"):
            time.sleep(pause)
    with steps.step("once"):
        sum(range(200_000))  # some CPU time of its own
    steps.close()
    assert steps.timings["encode"] >= 0.12 - 1e-3
    assert steps.timings["encode"] < 0.12 + 0.5
    assert set(steps.cpu_timings) == {"encode", "once"} and steps.cpu_timings["once"] > 0


def test_quantizer_seed_spread_is_not_a_results_table_measure(tmp_path):
    from latentgeo.analysis.table import flatten_measures

    record = compute_measures(make_sample(n=300), seed=7, quantizer_seeds=2, quantizers="pq",
                              m=2, nbits=4, progress=False)
    columns = flatten_measures(record)
    assert "pq_patchiness" in columns and not any("seed_sd" in c for c in columns)


@pytest.mark.parametrize("count", [0, -1, 2.5])
def test_bad_quantizer_seed_counts_are_refused(count, tmp_path):
    from latentgeo.errors import LatentgeoError

    with pytest.raises(LatentgeoError, match="quantizer_seeds"):
        compute_measures(make_sample(n=300), quantizer_seeds=count, quantizers="pq", m=2, nbits=4,
                         progress=False)


def test_cli_quantizer_seeds_write_means_and_spread(tmp_path, npy):
    out = tmp_path / "m.json"
    rc = main(["measures", "--embeddings", str(npy), "--out", str(out), "--quantizers", "pq", "--m", "2",
               "--quantizer-seeds", "2", *FAST])
    record = read_json(out)
    assert rc == 0 and record["inputs"]["quantizer_seeds"] == [1234, 1235]
    assert set(record["quantizer_seed_sd"]["pq"]) == CELL_MEASURES
    with pytest.raises(SystemExit):
        main(["measures", "--embeddings", str(npy), "--out", str(tmp_path / "x.json"),
              "--quantizer-seeds", "0", *FAST])
    assert not (tmp_path / "x.json").exists()
