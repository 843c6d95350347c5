"""`latentgeo verify`: results against the committed reference, within stated tolerances.

Fast tests build small synthetic studies in a temporary git repository (a params.yaml, a
tolerance file, a results tree), commit them, change the workspace, and run the command. The
pipeline test reruns nothing of its own: it verifies the smoke run of tests/test_pipeline.py
(conftest's ``smoke_repo``, run under a perturbed floating-point path) against the committed smoke
reference in tests/reference/smoke.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from latentgeo.cli import main
from latentgeo.verify import WITHIN, verify_study
from latentgeo.verify.compare import judge_leaf, json_leaves, parse_csv
from latentgeo.verify.sources import pipeline_outputs, produced_by
from latentgeo.verify.tolerances import ToleranceRule, glob_regex, load_tolerances

TOLERANCES = """\
profile: toy
reference: .
ignore:
  - files: "results/runs/*.json"
    keys: wall_time_s
    why: wall-clock time of the run, not a result
tolerances:
  - name: scores
    files: ["results/runs/*.json", "results/table.csv"]
    keys: [score, "metrics.*.accuracy", "score_*"]
    abs: 0.02
    why: test rule (scores move by a few flipped predictions)
  - name: losses
    files: "results/runs/*.json"
    keys: "log_history.*.loss"
    rel: 1.0e-3
    why: test rule
  - name: r
    files: results/plots/r.csv
    keys: r
    abs: 0.01
    why: test rule
"""

RUN = {
    "score": 0.925,
    "metrics": {"validation": {"accuracy": 0.925, "n": 200}},
    "log_history": [{"step": 1, "loss": 1.6132}, {"step": 2, "loss": 1.5965}],
    "task": "bbc-topic",
    "wall_time_s": 22.4,
}
TABLE = "model,family,alpha,score_bbc,spread_vrm\nm-a0,base,0,0.925,0.5967806\nm-a5,perturbed,5,0.755,0.6012\n"
R_CSV = "measure,n,r\nvrm,9,0.90\neee,9,-0.89\niso,9,0.50\n"


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True).stdout


def write(repo: Path, rel: str, text: str) -> None:
    path = repo / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def commit(repo: Path, message: str = "study") -> None:
    git(repo, "add", "-A")
    git(repo, "-c", "user.email=t@example.invalid", "-c", "user.name=t", "commit", "-qm", message)


@pytest.fixture
def study(tmp_path, monkeypatch):
    """A committed toy study; the test's working directory is its root."""
    repo = tmp_path / "study"
    repo.mkdir()
    git(repo, "init", "-q")
    write(repo, "params.yaml", "profile: toy\nmodels: [a0, a5]\n")
    write(repo, "tolerances/toy.yaml", TOLERANCES)
    write(repo, "results/runs/a0.json", json.dumps(RUN, indent=2))
    write(repo, "results/table.csv", TABLE)
    write(repo, "results/plots/r.csv", R_CSV)
    write(repo, "figures/score.png", "not compared")
    commit(repo)
    monkeypatch.chdir(repo)
    return repo


def verify(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["verify", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def edit_run(repo: Path, **changes) -> None:
    run = json.loads((repo / "results/runs/a0.json").read_text())
    for dotted, value in changes.items():
        node, *path, last = [run, *dotted.split("__")]
        for key in path:
            node = node[int(key)] if isinstance(node, list) else node[key]
        node[int(last) if isinstance(node, list) else last] = value
    (repo / "results/runs/a0.json").write_text(json.dumps(run, indent=2))


# ------------------------------------------------------------------------ the verdicts


def test_identical_study_is_reproduced(study, capsys):
    code, out, _ = verify(capsys)
    assert code == 0
    lines = out.strip().splitlines()
    assert len(lines) == 4  # three results (the PNG is not one), then the study's verdict
    assert all(line.startswith("identical") for line in lines[:3])
    assert lines[-1].startswith("reproduced: identical") and "3 identical, 0 within tolerance, 0 out" in lines[-1]
    assert "profile 'toy', 3 results against results/ at HEAD" in lines[-1] and "tolerances tolerances/toy.yaml" in lines[-1]


def test_change_within_tolerance_passes_and_says_by_how_much(study, capsys):
    edit_run(study, score=0.93, log_history__0__loss=1.6140, wall_time_s=31.0)
    code, out, _ = verify(capsys)
    assert code == 0
    line = next(l for l in out.splitlines() if "results/runs/a0.json" in l)
    # two values changed (the wall time is ignored); the one closest to its tolerance is named
    assert line.startswith("within tolerance") and "2 of " in line
    assert "log_history.0.loss 1.6132 → 1.614" in line and "rel +0.0005" in line
    assert "'losses' (rel 0.001)" in line
    assert out.strip().splitlines()[-1].startswith("reproduced within tolerance")


def test_change_beyond_tolerance_fails_naming_result_key_and_size(study, capsys):
    edit_run(study, metrics__validation__accuracy=0.89)
    code, out, _ = verify(capsys)
    assert code == 1
    line = next(l for l in out.splitlines() if l.startswith("OUT"))
    assert "results/runs/a0.json" in line
    assert "metrics.validation.accuracy 0.925 → 0.89" in line
    assert "Δ -0.035" in line and "'scores' (abs 0.02)" in line and "175%" in line
    assert out.strip().splitlines()[-1].startswith("NOT reproduced")


def test_csv_cell_beyond_tolerance_names_column_and_row(study, capsys):
    write(study, "results/table.csv", TABLE.replace("0.755", "0.70"))
    code, out, _ = verify(capsys)
    assert code == 1
    line = next(l for l in out.splitlines() if l.startswith("OUT"))
    assert "results/table.csv" in line and "score_bbc [m-a5 / perturbed] 0.755 → 0.7" in line


def test_value_without_a_tolerance_must_be_identical(study, capsys):
    write(study, "results/table.csv", TABLE.replace("0.5967806", "0.5967807"))
    code, out, _ = verify(capsys)
    assert code == 1
    assert "spread_vrm [m-a0 / base] 0.5967806 → 0.5967807" in out and "no tolerance: must be identical" in out


def test_text_must_be_identical(study, capsys):
    edit_run(study, task="wiki-adjacency")
    code, out, _ = verify(capsys)
    assert code == 1 and "task 'bbc-topic' → 'wiki-adjacency'" in out


def test_missing_and_extra_results_are_out(study, capsys):
    (study / "results/plots/r.csv").unlink()
    write(study, "results/runs/a5.json", json.dumps(RUN))
    code, out, _ = verify(capsys)
    assert code == 1
    assert "OUT of tolerance  results/plots/r.csv: missing from the workspace" in out
    assert "OUT of tolerance  results/runs/a5.json: not in the reference" in out


def test_ignored_or_gitignored_files_are_not_results(study, capsys):
    write(study, ".gitignore", "/results/cache/\n")
    commit(study, "ignore the cache")
    write(study, "results/cache/x.json", "{}")
    code, out, _ = verify(capsys)
    assert code == 0 and "cache" not in out


def test_ignored_value_must_still_be_present(study, capsys):
    run = json.loads((study / "results/runs/a0.json").read_text())
    del run["wall_time_s"]
    (study / "results/runs/a0.json").write_text(json.dumps(run))
    code, out, _ = verify(capsys)
    assert code == 1 and "wall_time_s: missing from the workspace" in out


def test_different_row_or_column_set_is_out(study, capsys):
    write(study, "results/table.csv", TABLE + "m-a9,perturbed,9,0.3,0.7\n")
    code, out, _ = verify(capsys)
    assert code == 1 and "rows differ (only in the workspace: m-a9 / perturbed)" in out
    write(study, "results/table.csv", TABLE.replace(",spread_vrm", ",spread_vrm2"))
    code, out, _ = verify(capsys)
    assert code == 1
    assert "columns differ (missing from the workspace: spread_vrm; only in the workspace: spread_vrm2)" in out


def test_json_structure_change_is_out(study, capsys):
    run = json.loads((study / "results/runs/a0.json").read_text())
    run["log_history"].append({"step": 3, "loss": 1.5})
    del run["metrics"]["validation"]["n"]
    (study / "results/runs/a0.json").write_text(json.dumps(run))
    code, out, _ = verify(capsys, "--show", "5")
    assert code == 1
    assert "metrics.validation.n: missing from the workspace" in out
    assert "log_history.2.loss: only in the workspace" in out


def test_rows_are_paired_by_identity_not_position(study, capsys):
    # the r table is sorted by |r|; a small move that reorders two rows pairs the same measures
    write(study, "results/plots/r.csv", "measure,n,r\neee,9,-0.897\nvrm,9,0.895\niso,9,0.50\n")
    code, out, _ = verify(capsys)
    assert code == 0
    assert "results/plots/r.csv: 2 of 9 values changed" in out and "r [eee] -0.89 → -0.897" in out


def test_row_filtered_rule_and_declared_row_ids(study, capsys):
    """A rule with `rows` covers only matching CSV rows (one chaotic model's row may move more);
    `row_ids` names the columns that identify a row where text columns do not."""
    write(study, "tolerances/toy.yaml", TOLERANCES + textwrap.dedent("""\
          - name: vrm-a5
            files: results/table.csv
            keys: spread_vrm
            rows: "m-a5*"
            abs: 0.01
            why: test rule for one row only
        row_ids:
          "results/plots/r.csv": [measure, n]
        """))
    commit(study, "row rules")
    write(study, "results/table.csv", TABLE.replace("0.6012", "0.605"))
    code, out, _ = verify(capsys)
    assert code == 0 and "spread_vrm [m-a5 / perturbed] 0.6012 → 0.605" in out
    write(study, "results/table.csv", TABLE.replace("0.5967806", "0.5968"))  # the other row: no rule
    code, out, _ = verify(capsys)
    assert code == 1 and "spread_vrm [m-a0 / base] 0.5967806 → 0.5968" in out and "must be identical" in out
    write(study, "results/table.csv", TABLE)
    write(study, "results/plots/r.csv", R_CSV.replace("vrm,9,", "vrm,8,"))  # n identifies the row now
    code, out, _ = verify(capsys)
    assert code == 1 and "rows differ (missing from the workspace: vrm / 9; only in the workspace: vrm / 8)" in out


def test_against_an_older_revision(study, capsys):
    edit_run(study, score=0.5)
    commit(study, "second run")
    assert verify(capsys)[0] == 0  # against HEAD: identical
    code, out, _ = verify(capsys, "--against", "HEAD~1")
    assert code == 1 and "score 0.925 → 0.5" in out and "at HEAD~1" in out


def test_reference_folder_and_profile_warning(study, capsys):
    """A reference kept in a folder (as the smoke profile's is) with the params.yaml that made it."""
    ref = "tests/reference/toy"
    for rel in ("results/runs/a0.json", "results/table.csv", "results/plots/r.csv"):
        write(study, f"{ref}/{rel}", (study / rel).read_text())
    write(study, f"{ref}/params.yaml", "profile: toy\nmodels: [a0, a5, a9]\n")
    write(study, "tolerances/toy.yaml", TOLERANCES.replace("reference: .", f"reference: {ref}"))
    commit(study, "reference folder")
    edit_run(study, score=0.93)
    code, out, _ = verify(capsys)
    assert code == 0
    assert "warning: the profile differs" in out and "models: ['a0', 'a5', 'a9'] → ['a0', 'a5']" in out
    assert f"against {ref}/ at HEAD" in out and "within tolerance  results/runs/a0.json" in out


def test_quiet_prints_only_what_is_out_and_the_verdict(study, capsys):
    edit_run(study, score=0.93)
    code, out, _ = verify(capsys, "--quiet")
    assert code == 0 and out.strip().splitlines() == [out.strip().splitlines()[-1]]
    assert out.startswith("reproduced within tolerance")


# ------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "no committed reference for profile 'toy': tolerances/toy.yaml does not exist"),
        ("profile: toy\ntolerances: [\n", "is not valid YAML"),
        ("- a list\n", "must be a YAML mapping"),
        ("profile: toy\ncolour: red\n", "colour: Extra inputs are not permitted"),
        ("profile: other\n", "holds the tolerances of profile 'other', but params.yaml is profile 'toy'"),
        ("profile: toy\ntolerances:\n  - {name: s, files: x, keys: score, why: w}\n", "give abs or rel > 0"),
        ("profile: toy\ntolerances:\n  - {name: s, files: x, keys: score, abs: 0.1}\n", "why: Field required"),
        ("profile: toy\ntolerances:\n  - {name: s, files: x, keys: score, abs: -1, why: w}\n",
         "greater than or equal to 0"),
        ("profile: toy\nreference: ../elsewhere\n", "must be a folder inside the repository"),
        ("profile: toy\nreference: no/such/folder\n", "reference folder 'no/such/folder'"),
    ],
)
def test_bad_tolerance_file_is_refused_before_comparing(study, capsys, content, message):
    path = study / "tolerances/toy.yaml"
    if content is None:
        path.unlink()
    else:
        path.write_text(content)
    code, out, err = verify(capsys)
    assert code == 2 and out == ""
    assert message in err and err.startswith("latentgeo verify: error:")


def test_missing_tolerance_file_given_is_refused(study, capsys):
    code, out, err = verify(capsys, "--tolerances", "nowhere.yaml")
    assert code == 2 and out == "" and "tolerance file not found: nowhere.yaml" in err


def test_unknown_revision_is_refused(study, capsys):
    code, out, err = verify(capsys, "--against", "no-such-rev")
    assert code == 2 and out == "" and "unknown revision 'no-such-rev'" in err


def test_outside_a_git_repository_is_refused(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code, _, err = verify(capsys)
    assert code == 2 and "not inside a git repository" in err


def test_profile_without_reference(study, capsys):
    write(study, "params.yaml", "profile: paper\n")
    code, _, err = verify(capsys)
    assert code == 2 and "no committed reference for profile 'paper'" in err
    code, out, _ = verify(capsys, "--no-reference-ok")
    assert code == 0 and out.startswith("not verified: profile 'paper' has no committed reference")


# ------------------------------------------------------------------ the pieces, directly


@pytest.mark.parametrize(
    "pattern, sep, name, hit",
    [
        ("results/**/*.json", "/", "results/a.json", True),
        ("results/**/*.json", "/", "results/x/y/a.json", True),
        ("results/*.json", "/", "results/x/a.json", False),
        ("results/**/*.json", "/", "tests/reference/smoke/results/a.json", False),
        ("log_history.*.loss", ".", "log_history.12.loss", True),
        ("log_history.*.loss", ".", "log_history.1.2.loss", False),
        ("measures.**.r", ".", "measures.vrm.heldout.r", True),
        ("score_*", ".", "score_wiki-adjacency", True),
        ("a[0]", ".", "a[0]", True),
        ("a[0]", ".", "a0", False),
    ],
)
def test_glob_semantics(pattern, sep, name, hit):
    assert bool(glob_regex(pattern, sep).match(name)) is hit


def test_judge_leaf_absolute_relative_and_missing_values():
    rule = ToleranceRule(name="t", files="x", keys="k", abs=0.01, rel=0.1, why="w")
    assert judge_leaf(1.0, 1.0, None) == 0
    assert judge_leaf(None, math.nan, None) == 0  # JSON null and an empty CSV cell: no value
    assert judge_leaf(0.0, 0.005, rule) == pytest.approx(0.5)  # abs 0.01 dominates near 0
    assert judge_leaf(2.0, 2.1, rule) == pytest.approx(0.5)  # rel 0.1 · 2 = 0.2 dominates
    assert judge_leaf(2.0, 2.3, rule) == pytest.approx(1.5)
    assert math.isinf(judge_leaf(1.0, None, rule)) and math.isinf(judge_leaf(1.0, 1.0 + 1e-12, None))
    assert judge_leaf(1, 1.0, None) == 0 and math.isinf(judge_leaf(True, 1, None))


def test_leaves_of_json_and_csv():
    leaves = json_leaves({"a": {"b": [1, {"c": "x"}]}, "e": {}, "f": []})
    assert {k: v.value for k, v in leaves.items()} == {"a.b.0": 1, "a.b.1.c": "x", "e": {}, "f": []}
    table = parse_csv("m,x\na,1\nb,\n")
    assert table.columns == ("m", "x") and table.rows[0] == ("a", 1.0) and math.isnan(table.rows[1][1])


def test_committed_tolerance_files_are_valid():
    root = Path(__file__).resolve().parents[1]
    files = sorted((root / "tolerances").glob("*.yaml"))
    assert {f.stem for f in files} >= {"default", "smoke"}
    for path in files:
        tol = load_tolerances(path)
        assert tol.profile == path.stem and tol.tolerances
        assert all(len(rule.why) > 20 for rule in (*tol.tolerances, *tol.ignore))


# ------------------------------------------------------------------- DVC agrees


@pytest.mark.slow  # three DVC start-ups: ~10 s on an idle machine
def test_numeric_changes_agree_with_dvc_metrics_diff(study):
    """On a DVC study, every metric `dvc metrics diff` reports changed, verify reports changed
    too, with the same old and new values (verify also sees list items, which DVC skips); the
    profile differences come from `dvc params diff`."""
    dvc = str(Path(sys.executable).parent / "dvc")
    subprocess.run([dvc, "init", "-q"], cwd=study, check=True)
    write(study, "dvc.yaml", textwrap.dedent("""\
        stages:
          run:
            cmd: "true"
            params: [models]
            metrics:
              - results/runs/a0.json:
                  cache: false
        """))
    commit(study, "dvc")
    edit_run(study, score=0.93, metrics__validation__accuracy=0.94, log_history__1__loss=1.5966)
    write(study, "params.yaml", "profile: toy\nmodels: [a0, a5, a9]\n")
    proc = subprocess.run([dvc, "metrics", "diff", "HEAD", "--json"], cwd=study, capture_output=True,
                          text=True, check=True)
    by_dvc = {k: (v["old"], v["new"]) for k, v in json.loads(proc.stdout)["results/runs/a0.json"].items()}
    assert by_dvc == {"score": (0.925, 0.93), "metrics.validation.accuracy": (0.925, 0.94)}

    outcome = verify_study(study)
    verdict = next(v for v in outcome.verdicts if v.path == "results/runs/a0.json")
    by_verify = {c.where: (c.old, c.new) for c in verdict.changes}
    assert by_verify == {**by_dvc, "log_history.1.loss": (1.5965, 1.5966)}
    assert verdict.status == WITHIN and outcome.reproduced
    # DVC reports list values as their text
    assert outcome.profile_changes == {"models": ("['a0', 'a5']", "['a0', 'a5', 'a9']")}
    # what the pipeline declares as outputs (only_pipeline_outputs keeps the workspace to these)
    outputs = pipeline_outputs(study)
    assert outputs == ["results/runs/a0.json"]
    assert produced_by("results/runs/a0.json", outputs) and not produced_by("results/table.csv", outputs)
    assert produced_by("results/x/y.json", ["results/x"]) and not produced_by("results/xy.json", ["results/x"])


# ------------------------------------------------------------- the smoke study, end to end


@pytest.mark.pipeline
@pytest.mark.slow
def test_smoke_rerun_on_another_float_path_reproduces_the_committed_reference(smoke_repo):
    """conftest's smoke run (two workers, one thread per stage: another floating-point path than
    the sequential all-core run that made the reference) verified against tests/reference/smoke: every result identical or within the
    stated smoke tolerances. If this fails after a change to what the pipeline writes, regenerate
    the reference with `make smoke-reference` and commit it with that change."""
    from pipeline_utils import VENV, run

    proc = run(smoke_repo, str(VENV / "bin" / "latentgeo"), "verify", check=False)
    last = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else proc.stderr
    assert proc.returncode == 0, f"{last}\n--- out of tolerance:\n" + "\n".join(
        line for line in proc.stdout.splitlines() if line.startswith(("OUT", "warning", "  "))) + proc.stderr
    assert last.startswith(("reproduced: identical", "reproduced within tolerance"))
    assert "profile 'smoke'" in last and "against tests/reference/smoke/" in last
    assert "profile differs" not in proc.stdout


def test_committed_tolerances_state_a_rule_for_every_number_the_regression_stage_adds():
    """The chance-normalised score (table and score-vs-α columns) and the second score's r and
    partial r (regression.json ``secondary_score``) fall under stated rules of the default profile,
    not the identical-or-fail default; the smoke profile leaves the second score's r uncompared
    exactly as it leaves the first's, and gives score_normalised its own tolerance."""

    root = Path(__file__).resolve().parents[1]
    default = load_tolerances(root / "tolerances" / "default.yaml")
    measures = json.loads((root / "results" / "regression.json").read_text())["measures"]
    for name in measures:
        for key in ("r", "r_ci_low", "r_ci_high", "p_value", "p_value_holm", "partial_r",
                    "partial_p_value", "partial_p_holm"):
            rule = default.rule_for("results/regression.json", f"secondary_score.measures.{name}.{key}")
            assert rule is not None and rule.name == f"regression-secondary-{name}", (name, key)
    assert default.rule_for("results/regression.json", "secondary_score.controls.r2") is not None
    # Leave-one-family-out: each measure's counts of left-out models predicted closer / farther
    # fall under a whole-model rule of their own, not the RMSE rule that follows them; the sign
    # test's p, a function of the two counts, is not judged apart.
    lofo = json.loads((root / "results" / "regression.json").read_text())["leave_one_family_out"]["measures"]
    for name in lofo:
        for key in ("better", "worse"):
            rule = default.rule_for("results/regression.json", f"leave_one_family_out.measures.{name}.{key}")
            assert rule.name.startswith("regression-lofo-counts-") and rule.abs == int(rule.abs) >= 1, (name, key)
        assert default.ignored("results/regression.json", f"leave_one_family_out.measures.{name}.sign_test_p")
        assert default.rule_for("results/regression.json",
                                f"leave_one_family_out.measures.{name}.rmse").name == "regression-leave-one-family-out"
    for path in ("results/table.csv", "results/plots/score_vs_alpha.csv"):
        assert default.rule_for(path, "score_normalised", "minilm-l6-a5-s1").name == "table-normalised"
        # every row of the current default, chance-level non-standard models included, under one rule
        assert default.rule_for(path, "score_normalised", "minilm-l6-untrained-s1").name == "table-normalised"
        assert default.rule_for(path, "score_average", "minilm-l6-a5-s1").name == "table-scores"
    smoke = load_tolerances(root / "tolerances" / "smoke.yaml")
    assert smoke.ignored("results/regression.json", "secondary_score.measures.lsq_patchiness.partial_r")
    assert not smoke.ignored("results/regression.json", "secondary_score.score")
    assert not smoke.ignored("results/regression.json", "leave_one_family_out.reason")
    assert smoke.rule_for("results/table.csv", "score_normalised", "minilm-l6-a100-s1").name == "a100-normalised-score-column"
    assert smoke.rule_for("results/table.csv", "score_normalised", "minilm-l6-a5-s1").name == "normalised-score-column"
