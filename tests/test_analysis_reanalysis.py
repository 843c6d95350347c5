"""The published-table reanalysis: R-script semantics on stand-in tables, and the real tables.

The stand-in tables are built here in the published layout (a blank first header, the score in
the 26th/25th column, the alternative table's second `model` column, missing cells) with values
of our own. The last test runs on the real tables when `references/manifolds/` holds them,
verified against `references/manifolds.json`, and pins the published numbers; it is skipped
otherwise (the tables are never committed: `latentgeo references get` fetches them; the
environment variable LATENTGEO_REFERENCES_DIR may name another folder holding them).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from latentgeo.cli import main
from latentgeo.errors import LatentgeoError
from latentgeo.analysis.reanalysis import (
    ALT_SOURCES,
    R_MEASURES,
    combined_table,
    read_published_table,
    reanalyse,
)
from latentgeo.stages.reanalysis import run_reanalysis

ROOT = Path(__file__).resolve().parents[1]
# The 23 measure columns of the published tables, in bert_small_metrics.csv's order.
MEASURES_23 = [
    "p-error", "p-iqr", "p-under_mu", "p-under_mu2", "p-skew", "p-count_var", "p-count_kl",
    "p-patchiness", "p-centroids", "p-point_dist", "a-error", "a-iqr", "a-under_mu", "a-under_mu2",
    "a-skew", "a-count_var", "a-count_kl", "a-centroids", "a-point_dist", "a-patchiness", "EEE",
    "VRM", "IsoScore",
]
ALT_NAMES = ["chin", "germ", "shuffle_index", "untrained", "fc", "mlm", "asci", "rand",
             "roberta_sinha", "shuffle_corp", "shuffle_sent", "bert-small", "untrained_w_emb"]
# linreg_clean.R's outlier list (as in the script; only three are model names).
R_OUTLIERS = ["untrained", "rand", "untrained_w_emb", "mse", "mse_filter", "sse", "sse_filter"]


def _measures(rng, alpha, n):
    """Measure columns that move with log α, plus noise; a-patchiness carries extra signal."""
    level = np.log(alpha)
    cols = {m: rng.normal(0, 1, n) - 0.3 * level * (i % 3 == 0) for i, m in enumerate(MEASURES_23)}
    return pd.DataFrame(cols)


def stand_in_tables(folder: Path, seed: int = 0) -> dict[str, Path]:
    """Write the four tables in the published layout; returns their paths by role."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    # bert-small: blank first header, ..., alpha (25th), new_average (26th); 2 rows without any
    # measure or α, as the published table has 3.
    n = 24
    alpha = np.exp(rng.uniform(np.log(0.5), np.log(100), n))
    m = _measures(rng, alpha, n)
    hidden = rng.normal(0, 1, n)
    m["a-patchiness"] = 1.0 + 0.01 * hidden - 0.002 * np.log(alpha)
    small = m.assign(alpha=alpha, new_average=0.7 - 0.08 * np.log(alpha) + 0.02 * hidden)
    small.index = [f"bert-small_{a:.3g}_{i % 3 + 1}" for i, a in enumerate(alpha)]
    small.loc[small.index[[5, 17]], [*MEASURES_23, "alpha"]] = np.nan
    paths["bert-small"] = folder / "bert_small_metrics.csv"
    small.to_csv(paths["bert-small"])
    # bert-base and roberta: `model` first, then measures, average (25th), alpha (26th); one
    # roberta row lacks its IQR and skew values, as in the published table.
    for role, n_rows, name in (("bert-base", 6, "bert_model_metrics.csv"),
                               ("roberta", 9, "roberta_model_metrics.csv")):
        alpha = np.exp(rng.uniform(0, np.log(70), n_rows))
        frame = _measures(rng, alpha, n_rows)
        frame.insert(0, "model", [f"{role}_{a:.3g}_1" for a in alpha])
        frame["average"] = 0.8 - 0.07 * np.log(alpha) + rng.normal(0, 0.02, n_rows)
        frame["alpha"] = alpha
        if role == "roberta":
            frame.loc[3, ["p-iqr", "a-iqr", "p-skew", "a-skew"]] = np.nan
        paths[role] = folder / name
        frame.to_csv(paths[role], index=False)
    # alternative: blank first header, measures, glue_average (25th), model again (26th).
    alt = _measures(rng, np.full(13, 1.0), 13)
    alt["glue_average"] = rng.uniform(0.5, 0.85, 13)
    alt["model"] = ALT_NAMES
    alt.index = ALT_NAMES
    paths["alternative"] = folder / "alt_model_metrics.csv"
    alt.to_csv(paths["alternative"])
    return paths


def stand_in_manifest(path: Path, tables: dict[str, Path]) -> Path:
    entries = [
        {"role": role, "path": f"results/metric files/{p.name}",
         "sha256": hashlib.sha256(p.read_bytes()).hexdigest(), "rows": len(pd.read_csv(p))}
        for role, p in tables.items()
    ]
    path.write_text(json.dumps({"repository": "someone/tables", "commit": "a" * 40, "tables": entries}))
    return path


@pytest.fixture(scope="module")
def paths(tmp_path_factory) -> dict[str, Path]:
    return stand_in_tables(tmp_path_factory.mktemp("published"))


@pytest.fixture(scope="module")
def tables(paths) -> dict[str, pd.DataFrame]:
    return {role: read_published_table(p, role) for role, p in paths.items()}


@pytest.fixture(scope="module")
def result(tables) -> dict:
    return reanalyse(tables)


# ------------------------------------------------------------------ reading as the R script


def test_tables_are_read_as_the_r_script_reads_them(paths, tables):
    assert paths["bert-small"].read_text().startswith(",p-error,")  # the blank first header
    small = tables["bert-small"]
    assert small["model"].iloc[0].startswith("bert-small_") and "glue_average" in small.columns
    assert "new_average" not in small.columns and (small["source"] == "bert small models").all()
    raw = pd.read_csv(paths["bert-small"])
    np.testing.assert_array_equal(small["glue_average"], raw.iloc[:, 25])
    for role, label in (("bert-base", "bert base models"), ("roberta", "roberta models")):
        raw = pd.read_csv(paths[role])
        np.testing.assert_array_equal(tables[role]["glue_average"], raw.iloc[:, 24])
        assert (tables[role]["source"] == label).all()
    alt = tables["alternative"]
    assert alt["model"].tolist() == ALT_NAMES
    assert list(alt.columns).count("model") == 1  # the 26th column, a second copy, is dropped
    assert alt["alpha"].isna().all()
    # The R script's labels by position: 4 bert-base, 7 roberta, bert-small, bert-base.
    assert dict(zip(alt["model"], alt["source"])) == {
        "chin": "bert base models", "germ": "bert base models", "shuffle_index": "bert base models",
        "untrained": "bert base models", "fc": "roberta models", "mlm": "roberta models",
        "asci": "roberta models", "rand": "roberta models", "roberta_sinha": "roberta models",
        "shuffle_corp": "roberta models", "shuffle_sent": "roberta models",
        "bert-small": "bert small models", "untrained_w_emb": "bert base models",
    }
    assert len(ALT_SOURCES) == 13


@pytest.mark.slow  # fits every model on the full stand-in tables
def test_combined_table_order_and_row_counts(tables, result):
    combined = combined_table(tables)
    assert len(combined) == 24 + 9 + 6 + 13
    assert combined["source"].iloc[:24].eq("bert small models").all()
    assert combined["source"].iloc[24:33].eq("roberta models").all()  # rbind order: small, roberta, base
    assert combined["family"].iloc[-13:].eq("non-standard").all()
    rows = result["rows"]
    assert rows["bert-small"]["complete"] == 22 and rows["roberta"]["complete"] == 8
    assert sorted(rows["bert-small"]["incomplete"].values()) == ["alpha and all 19 measures"] * 2
    assert rows["families"]["training_rows"] == 39 and rows["families"]["heldout_rows"] == 13
    fitted = rows["families"]["fitted_rows_per_measure"]
    assert fitted["a-patchiness"] == 37 and fitted["p-iqr"] == 36
    fams = result["families"]["measures"]
    assert fams["a-patchiness"]["n"] == 37 and fams["a-patchiness"]["group_fit"]["n"] == 37
    assert fams["a-skew"]["n"] == 36
    assert result["sweep"]["measures"]["a-patchiness"]["n"] == 22


@pytest.mark.parametrize(
    ("role", "edit", "message"),
    [
        ("bert-small", lambda f: f.rename(columns={"new_average": "glue"}), "column 26 is 'glue', expected 'new_average'"),
        ("roberta", lambda f: f[[c for c in f.columns if c != "average"] + ["average"]], "column 25 is 'alpha', expected 'average'"),
        ("alternative", lambda f: f.drop(columns="model"), "column 26 is None, expected 'model'"),
        ("alternative", lambda f: f.iloc[:12], "has 12 rows; linreg_clean.R labels exactly 13"),
    ],
)
def test_other_layouts_are_refused(tmp_path, paths, role, edit, message):
    frame = pd.read_csv(paths[role])
    path = tmp_path / "t.csv"
    edit(frame).to_csv(path, index=False)
    with pytest.raises(LatentgeoError, match=message):
        read_published_table(path, role)


# ------------------------------------------------- the analyses against plain references


def r_script_lm(train: pd.DataFrame, alt: pd.DataFrame, measure: str, with_source: bool):
    """Plain reference for one measure of linreg_clean.R: lm(glue_average ~ measure [+ source])
    on the combined noisy families (rows with NA dropped, as lm does), predict(model, alt), and
    Metrics::mse over all alternative models and without `outlier_models`. Treatment coding with
    the alphabetically first source as baseline, as R's factor does."""
    used = train.dropna(subset=[measure, "glue_average"])
    levels = sorted(used["source"].unique())

    def design(frame):
        cols = [np.ones(len(frame)), frame[measure].to_numpy()]
        if with_source:
            cols += [(frame["source"] == lvl).to_numpy(float) for lvl in levels[1:]]
        return np.column_stack(cols)

    coef, *_ = np.linalg.lstsq(design(used), used["glue_average"].to_numpy(), rcond=None)
    predicted = design(alt) @ coef
    sq = (alt["glue_average"].to_numpy() - predicted) ** 2
    keep = ~alt["model"].isin(R_OUTLIERS).to_numpy()
    return len(used), coef, predicted, sq.mean(), sq[keep].mean()


@pytest.mark.parametrize("measure", ["a-patchiness", "p-iqr", "EEE"])
def test_family_fits_follow_the_r_script(tables, result, measure):
    train = pd.concat([tables[r] for r in ("bert-small", "roberta", "bert-base")], ignore_index=True)
    alt = tables["alternative"]
    fit = result["families"]["measures"][measure]
    for with_source, got in ((False, fit), (True, fit["group_fit"])):
        n, coef, predicted, mse, mse_filter = r_script_lm(train, alt, measure, with_source)
        assert got["n"] == n
        assert got["slope"] == pytest.approx(coef[1], rel=1e-9)
        out = got["heldout"]
        assert [p["model"] for p in out["predictions"]] == ALT_NAMES
        np.testing.assert_allclose([p["predicted"] for p in out["predictions"]], predicted, rtol=1e-9)
        assert out["mse"] == pytest.approx(mse, rel=1e-9)
        assert out["mse_without_outliers"] == pytest.approx(mse_filter, rel=1e-9)
        assert out["outliers_excluded"] == ["untrained", "rand", "untrained_w_emb"]
        assert out["n_without_outliers"] == 10


@pytest.mark.slow  # fits every model on the full stand-in tables
def test_family_fits_never_see_the_alternative_models(tables, result):
    changed = dict(tables)
    alt = tables["alternative"].copy()
    alt["glue_average"] = 100.0
    alt[list(R_MEASURES)] = alt[list(R_MEASURES)] * 1000.0
    changed["alternative"] = alt
    again = reanalyse(changed)
    for m in R_MEASURES:
        before, after = result["families"]["measures"][m], again["families"]["measures"][m]
        assert (before["slope"], before["intercept"], before["n"]) == (after["slope"], after["intercept"], after["n"])
        assert before["group_fit"]["slope"] == after["group_fit"]["slope"]
        assert before["group_fit"]["group_effects"] == after["group_fit"]["group_effects"]


def test_sweep_partial_r_and_holm_against_plain_references(tables, result):
    small = tables["bert-small"].dropna(subset=["alpha", "glue_average"])
    design = np.column_stack([np.ones(len(small)), np.log(small["alpha"])])
    resid = lambda v: v - design @ np.linalg.lstsq(design, v, rcond=None)[0]  # noqa: E731
    ry = resid(small["glue_average"].to_numpy())
    sweep = result["sweep"]
    for m in R_MEASURES:
        rx = resid(small[m].to_numpy())
        assert sweep["measures"][m]["partial_r"] == pytest.approx(np.corrcoef(rx, ry)[0, 1], rel=1e-8)
    p = np.array([sweep["measures"][m]["partial_p_value"] for m in R_MEASURES])
    order = np.argsort(p)
    holm = np.empty_like(p)
    running = 0.0
    for rank, i in enumerate(order):  # Holm by hand: (m − rank) · p, running maximum, cap 1
        running = max(running, (len(p) - rank) * p[i])
        holm[i] = min(1.0, running)
    np.testing.assert_allclose([sweep["measures"][m]["partial_p_holm"] for m in R_MEASURES], holm, rtol=1e-12)
    alone = sweep["controls"]["fits"]["log(alpha)"]
    assert alone["r"] == pytest.approx(np.corrcoef(np.log(small["alpha"]), small["glue_average"])[0, 1], rel=1e-10)
    assert sorted(sweep["measures"]) == sorted(R_MEASURES)  # the R script's 19, not the 23 columns


def test_published_check_compares_at_the_published_precision(result):
    rows = {(r["measure"], r["statistic"]): r for r in result["published"]}
    assert set(rows) == {("a-patchiness", "r"), ("a-patchiness", "n"), ("a-patchiness", "slope"),
                         ("p-patchiness", "r")}
    n_row = rows[("a-patchiness", "n")]
    assert n_row["ours"] == 22 and n_row["published"] == 125 and n_row["agrees"] is False


# ------------------------------------------------------------------- the stage and the CLI


@pytest.mark.slow  # fits every model on the full stand-in tables
def test_run_reanalysis_verifies_then_writes(tmp_path, paths):
    manifest = stand_in_manifest(tmp_path / "m.json", paths)
    folder = paths["bert-small"].parent
    done = run_reanalysis(manifest, folder, tmp_path / "out.json", tmp_path / "fig.png")
    written = json.loads((tmp_path / "out.json").read_text())
    assert written["provenance"]["commit"] == "a" * 40
    assert written["families"]["measures"]["a-patchiness"]["group_fit"]["n"] == 37
    assert (tmp_path / "fig.png").stat().st_size > 1000
    assert list(done.sweep.columns[:3]) == ["measure", "n", "r"]
    assert done.predictions("a-patchiness")["outlier"].sum() == 3


@pytest.mark.slow  # fits every model on the full stand-in tables
def test_study_beside_the_paper_in_one_figure(tmp_path, paths):
    """--ours: a study's regression result drawn beside the paper's sweep; both or neither."""
    manifest = stand_in_manifest(tmp_path / "m.json", paths)
    folder = paths["bert-small"].parent
    first = run_reanalysis(manifest, folder)
    study = tmp_path / "regression.json"
    study.write_text(json.dumps({**first.result["sweep"], "profile": "toy", "suite": "offline"}))
    run_reanalysis(manifest, folder, ours=study, pair_figure=tmp_path / "pair.png")
    assert (tmp_path / "pair.png").stat().st_size > 10_000
    with pytest.raises(LatentgeoError, match="go together"):
        run_reanalysis(manifest, folder, ours=study)
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(LatentgeoError, match="not a regression result"):
        run_reanalysis(manifest, folder, ours=tmp_path / "bad.json", pair_figure=tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


@pytest.mark.slow  # fits every model on the full stand-in tables
def test_cli_refuses_tables_that_do_not_match_the_manifest(tmp_path, paths, capsys):
    folder = tmp_path / "tables"
    folder.mkdir()
    for p in paths.values():
        (folder / p.name).write_bytes(p.read_bytes())
    manifest = stand_in_manifest(tmp_path / "m.json", paths)
    out = tmp_path / "r.json"
    assert main(["reanalyse", "--manifest", str(manifest), "--tables", str(folder), "--out", str(out)]) == 0
    assert "a-patchiness: r = " in capsys.readouterr().out
    (folder / "roberta_model_metrics.csv").write_text("model,x\n")
    assert main(["reanalyse", "--manifest", str(manifest), "--tables", str(folder), "--out",
                 str(tmp_path / "r2.json")]) == 2
    err = capsys.readouterr().err
    assert "roberta_model_metrics.csv" in err and "does not match" in err
    assert not (tmp_path / "r2.json").exists()


# ------------------------------------------------------------------ the real published tables


def _real_tables_or_skip() -> dict:
    from latentgeo.analysis.references import load_manifest, verify_references

    manifest = ROOT / "references" / "manifolds.json"
    # Where `latentgeo references get` puts them; another folder holding them may be named.
    folder = Path(os.environ.get("LATENTGEO_REFERENCES_DIR", ROOT / "references" / "manifolds"))
    try:
        verify_references(load_manifest(manifest), folder)
    except LatentgeoError as err:
        pytest.skip(f"no sha-verified published tables: {err}")
    from latentgeo.analysis.reanalysis import read_published_tables

    paths = verify_references(load_manifest(manifest), folder)
    return run_reanalysis(manifest, folder).result, read_published_tables(paths)


def test_published_numbers_on_the_real_tables():
    result, tables = _real_tables_or_skip()
    sweep = result["sweep"]["measures"]
    a, p = sweep["a-patchiness"], sweep["p-patchiness"]
    assert a["n"] == 125 and round(a["r"], 3) == 0.902 and round(a["slope"], 2) == 16.30
    assert p["n"] == 125 and round(p["r"], 3) == 0.326
    assert round(result["sweep"]["controls"]["fits"]["log(alpha)"]["r"], 3) == -0.956
    assert all(row["agrees"] for row in result["published"])
    assert result["rows"]["bert-small"]["rows"] == 128 and result["rows"]["bert-small"]["complete"] == 125
    fam = result["families"]["measures"]["a-patchiness"]
    assert fam["n"] == 168 and fam["group_fit"]["n"] == 168
    assert result["families"]["measures"]["a-iqr"]["n"] == 167
    assert round(fam["group_fit"]["slope"], 2) == 8.33
    for fit in (fam, fam["group_fit"]):
        assert fit["heldout"]["n"] == 13 and fit["heldout"]["n_without_outliers"] == 10
    assert result["rows"]["families"]["training_rows"] == 171
    # The 13 alternative models predicted by every measure's two fits, as linreg_clean.R does.
    train = pd.concat([tables[r] for r in ("bert-small", "roberta", "bert-base")], ignore_index=True)
    for m in R_MEASURES:
        fit = result["families"]["measures"][m]
        for with_source, got in ((False, fit), (True, fit["group_fit"])):
            n, coef, predicted, mse, mse_filter = r_script_lm(train, tables["alternative"], m, with_source)
            assert got["n"] == n
            np.testing.assert_allclose([p["predicted"] for p in got["heldout"]["predictions"]],
                                       predicted, rtol=1e-9)
            assert got["heldout"]["mse"] == pytest.approx(mse, rel=1e-9)
            assert got["heldout"]["mse_without_outliers"] == pytest.approx(mse_filter, rel=1e-9)


# --------------------------------------------------------------- profiles and the DVC stage


def test_profiles_run_the_reanalysis_only_where_the_tables_can_be_had():
    import yaml

    from latentgeo.config.schema import load_params

    stage = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]["reanalysis"]
    assert stage["foreach"] == "${reanalysis.sources}"
    assert "references/${item}.json" in stage["do"]["deps"]
    # Offline profiles generate no reanalysis stage (an empty foreach list): `dvc repro` needs
    # neither the tables nor the network there.
    assert load_params(ROOT / "params.yaml").reanalysis.sources == []
    assert load_params(ROOT / "profiles" / "smoke.yaml").reanalysis.sources == []
    paper = load_params(ROOT / "profiles" / "paper.yaml").reanalysis
    assert paper.sources == ["manifolds"] and paper.controls == ["log(alpha)"]
    for source in paper.sources:
        assert (ROOT / "references" / f"{source}.json").is_file()


@pytest.mark.parametrize(
    ("section", "key", "value", "fragment"),
    [
        ("reanalysis", "sources", ["Not A Name"], "reanalysis.sources.0"),
        ("reanalysis", "sources", ["manifolds", "manifolds"], "sources must be unique"),
        ("reanalysis", "controls", ["sqrt(alpha)"], "cannot parse control 'sqrt(alpha)'"),
        ("regression", "controls", ["log(alpha"], "cannot parse control 'log(alpha'"),
        ("regression", "controls", ["alpha", "alpha"], "controls must be unique"),
    ],
)
def test_profile_schema_refuses_bad_reanalysis_and_control_settings(section, key, value, fragment):
    import yaml

    from latentgeo.config.schema import validate_params

    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw[section][key] = value
    with pytest.raises(LatentgeoError) as info:
        validate_params(raw)
    assert fragment in str(info.value)
