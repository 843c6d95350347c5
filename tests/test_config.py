"""The parameter schema: every profile is valid; bad values are refused fast, naming the key."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from latentgeo.cli import main
from latentgeo.config import schema
from latentgeo.config.schema import load_params, validate_params
from latentgeo.errors import LatentgeoError

ROOT = Path(__file__).resolve().parents[1]
PROFILES = [ROOT / "params.yaml", *sorted((ROOT / "profiles").glob("*.yaml"))]


def _default() -> dict:
    return yaml.safe_load((ROOT / "params.yaml").read_text())


@pytest.mark.parametrize("path", PROFILES, ids=lambda p: p.name)
def test_every_profile_is_valid(path):
    params = load_params(path)
    assert params.profile == ("default" if path.name == "params.yaml" else path.stem)


def test_profiles_share_one_schema():
    # `members` is generated per profile (its keys are model ids): compared as one key.
    keys = lambda d, pre="": {f"{pre}{k}" for k in d} | {  # noqa: E731
        x for k, v in d.items() if isinstance(v, dict) and k != "members" for x in keys(v, f"{pre}{k}.")
    }
    reference = keys(_default())
    for path in PROFILES[1:]:
        assert keys(yaml.safe_load(path.read_text())) == reference, path.name


def test_noise_key_names_alpha():
    assert "alphas" in _default()["perturb"]


def _refusal(raw: dict) -> str:
    with pytest.raises(LatentgeoError) as info:
        validate_params(raw, "test.yaml")
    return str(info.value)


@pytest.mark.parametrize(
    "edit, key, fragment",
    [
        (lambda p: p["perturb"].__setitem__("alphas", [0, -5]), "perturb.alphas.1", "-5"),
        (lambda p: p["perturb"].__setitem__("alphas", [0, 150]), "perturb.alphas.1", "150"),
        (lambda p: p["perturb"].__setitem__("alphas", [5, 10]), "perturb.alphas", "must include 0"),
        (lambda p: p["finetune"].__setitem__("tasks", []), "finetune.tasks", "at least 1"),
        (lambda p: p["finetune"].__setitem__("tasks", ["cola"]), "finetune", "not in suite 'offline'"),
        (lambda p: p["finetune"].__setitem__("precision", "fp16"), "finetune.precision", "'bf16'"),
        (lambda p: p["measures"].__setitem__("m", 16), "measures", "m × nbits"),
        (lambda p: p["measures"].__setitem__("nbits", 30), "measures.nbits", "16"),
        (lambda p: p["measures"].__setitem__("quantizers", ["opq"]), "measures.quantizers.0", "'pq'"),
        (lambda p: p["perturb"].__setitem__("base_models", ["minilm-l7"]), "perturb.base_models", "unknown model"),
        (lambda p: p["embed"].__setitem__("batch_size", "big"), "embed.batch_size", "integer"),
        (lambda p: p["perturb"].__setitem__("colour", 1), "perturb.colour", "unknown key"),
        (lambda p: p["stitching"].__setitem__("encoders", ["minilm-l6", "clip"]), "stitching.encoders", "clip"),
        (lambda p: p["stitching"].__setitem__("anchors", 10_000), "stitching", "below n_sentences"),
        (lambda p: p["stitching"].__setitem__("corpus_sentences", 100), "stitching", "must exceed anchors"),
        (lambda p: p["stitching"].__setitem__("anchor_sweep", []), "stitching.anchor_sweep", "at least 1"),
        (lambda p: p["stitching"].__setitem__("corpus_sentences", 0), "stitching.corpus_sentences", "greater than 0"),
    ],
)
def test_bad_values_are_refused_with_key_value_and_rule(edit, key, fragment):
    raw = _default()
    edit(raw)
    message = _refusal(raw)
    assert key in message
    assert fragment in message


def test_missing_section_is_named():
    raw = _default()
    del raw["measures"]
    assert "measures" in _refusal(raw)


def test_checks_across_keys_do_not_echo_the_whole_section_or_file():
    """A check across a section's keys (or across sections, as the stale members list) is handed
    the whole mapping: the message names the problem without printing that mapping back."""
    raw = _default()
    raw["stitching"]["anchors"] = 10_000
    lines = _refusal(raw).splitlines()
    assert lines[0] == "invalid parameters in test.yaml:"
    assert lines[1].startswith("  stitching: ") and "below n_sentences" in lines[1]
    assert len(lines) == 2 and "{" not in lines[1], "the section was echoed"

    raw = _default()
    raw["perturb"]["seeds"] = [1, 2, 3]
    lines = _refusal(raw).splitlines()
    assert lines[1].startswith("  (top level): members does not match the perturb grid")
    assert len(lines) == 2 and "{" not in lines[1], "the whole file was echoed"


def test_a_long_refused_value_is_cut():
    raw = _default()
    raw["perturb"]["alphas"] = [float(a) for a in range(1, 60)]  # no 0
    line = _refusal(raw).splitlines()[1]
    assert line.startswith("  perturb.alphas = [1.0, 2.0, ") and "…: noise levels" in line
    shown = line.split(" = ", 1)[1].split("…", 1)[0]
    assert len(shown) + 1 == schema.SHOWN_VALUE_CHARS


@pytest.mark.parametrize("folder, short", [("my bert", "my bert"), ("bert$(x)", "bert$(x)")])
def test_base_model_folders_must_give_names_dvc_and_the_shell_can_carry(tmp_path, folder, short):
    """A base model's name is written unquoted into dvc.yaml's commands and its short name starts
    the model ids that name stages and files: a folder named with a space or a shell character is
    refused before anything runs, with what to do; a plain name is taken and names the ids."""
    bad = tmp_path / folder
    bad.mkdir()
    (bad / "config.json").write_text("{}")
    raw = _default()
    raw["perturb"]["base_models"] = [str(bad)]
    message = _refusal(raw)
    assert "perturb.base_models" in message and "rename the folder" in message

    good = tmp_path / "my_bert.v2"
    good.mkdir()
    (good / "config.json").write_text("{}")
    raw["perturb"]["base_models"] = [str(good)]
    raw["members"] = yaml.safe_load(schema.members_block(schema.PerturbParams(**raw["perturb"])))["members"]
    params = validate_params(raw)
    assert params.perturb.model_ids()[0] == "my_bert.v2-a0-s1"


def test_a_base_model_record_with_an_unusable_model_id_is_refused(tmp_path):
    folder = tmp_path / "bert"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    (folder / "latentgeo.json").write_text('{"model_id": "bert v2"}')
    raw = _default()
    raw["perturb"]["base_models"] = [str(folder)]
    message = _refusal(raw)
    assert "short name 'bert v2'" in message and "model_id in its latentgeo.json" in message


def test_cli_check_rejects_negative_alpha_fast(tmp_path):
    bad = tmp_path / "params.yaml"
    text = (ROOT / "params.yaml").read_text().replace("alphas: [0,", "alphas: [-5, 0,")
    assert "-5" in text
    bad.write_text(text)
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "latentgeo.cli", "params", "check", str(bad)],
                          capture_output=True, text=True)
    assert time.monotonic() - start < 5
    assert proc.returncode == 2
    assert "perturb.alphas" in proc.stderr and "Traceback" not in proc.stderr


def test_cli_check_accepts_default(capsys):
    assert main(["params", "check", str(ROOT / "params.yaml")]) == 0
    assert "valid" in capsys.readouterr().out


def test_cli_check_missing_file(capsys, tmp_path):
    assert main(["params", "check", str(tmp_path / "nope.yaml")]) == 2
    assert "not found" in capsys.readouterr().err


def test_use_profile_switches_and_refuses_unknown(tmp_path, monkeypatch, capsys):
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles" / "smoke.yaml").write_text((ROOT / "profiles" / "smoke.yaml").read_text())
    monkeypatch.chdir(tmp_path)
    assert main(["params", "use", "smoke"]) == 0
    assert load_params(tmp_path / "params.yaml").profile == "smoke"
    assert main(["params", "use", "gpu-huge"]) == 2
    assert "unknown profile" in capsys.readouterr().err


def test_use_refuses_a_copied_profile_that_kept_its_sources_name(tmp_path, monkeypatch, capsys):
    """docs/cli.md's recipe for your own models copies params.yaml: a copy still saying
    `profile: default` would be verified against the default's committed results."""
    (tmp_path / "profiles").mkdir()
    copy = tmp_path / "profiles" / "mine.yaml"
    copy.write_text((ROOT / "params.yaml").read_text())
    monkeypatch.chdir(tmp_path)
    assert main(["params", "use", "mine"]) == 2
    assert "says profile: default; set it to mine" in capsys.readouterr().err
    assert not (tmp_path / "params.yaml").exists()
    assert main(["params", "check", str(copy)]) == 2  # the recipe's check says so first
    assert "set it to mine" in capsys.readouterr().err
    (tmp_path / "elsewhere.yaml").write_text(copy.read_text())  # outside profiles/: any name
    assert main(["params", "check", str(tmp_path / "elsewhere.yaml")]) == 0
    copy.write_text(copy.read_text().replace("profile: default", "profile: mine", 1))
    assert main(["params", "use", "mine"]) == 0
    assert load_params(tmp_path / "params.yaml").profile == "mine"


def test_data_source_names_the_allowed_sources():
    raw = _default()
    raw["data"]["source"] = "ftp"
    message = _refusal(raw)
    assert "data.source" in message
    assert all(f"'{s}'" in message for s in ("packaged", "hub", "paper-sequences"))
    raw["data"]["source"] = "paper-sequences"
    assert validate_params(raw).data.source == "paper-sequences"


def test_members_mapping_is_generated_from_the_perturb_grid(tmp_path):
    """DVC makes one cell per line of `members`; a grid edit without regenerating it is refused,
    and `latentgeo params members --write` rewrites only that block."""
    text = (ROOT / "profiles" / "smoke.yaml").read_text()
    raw = yaml.safe_load(text)
    assert list(raw["members"]) == load_params(ROOT / "profiles" / "smoke.yaml").perturb.model_ids()
    assert raw["members"]["minilm-l6-a5-s1"] == {
        "base_model": "minilm-l6", "kind": "perturbed", "alpha": 5, "seed": 1, "reference": "minilm-l6-a0-s1"}
    raw["perturb"]["seeds"] = [1, 2]
    message = _refusal(raw)
    assert "members does not match the perturb grid" in message
    assert "missing ['minilm-l6-a5-s2', 'minilm-l6-a100-s2']" in message
    assert "latentgeo params members --write" in message

    path = tmp_path / "p.yaml"
    path.write_text(text.replace("  seeds: [1]", "  seeds: [1, 2]"))
    assert main(["params", "members", "--write", str(path)]) == 0
    params = load_params(path)
    assert len(params.members) == 6 and params.members["minilm-l6-a100-s2"].reference == "minilm-l6-a0-s1"
    new = path.read_text()
    # Everything outside the block is kept byte for byte, comments included.
    assert new.split("\nmembers:")[0] == text.replace("  seeds: [1]", "  seeds: [1, 2]").split("\nmembers:")[0]
    assert main(["params", "members", "--write", str(path)]) == 0 and path.read_text() == new


def test_every_profile_members_block_is_current():
    from latentgeo.config.schema import members_text

    for path in PROFILES:
        assert members_text(path) == path.read_text(), f"{path.name}: run latentgeo params members --write"


def test_members_command_prints_without_writing(tmp_path, capsys):
    path = tmp_path / "p.yaml"
    text = (ROOT / "profiles" / "smoke.yaml").read_text()
    stale = text.replace("  seeds: [1]", "  seeds: [1, 3]")
    path.write_text(stale)
    assert main(["params", "members", str(path)]) == 0
    printed = capsys.readouterr().out
    assert "minilm-l6-a5-s3: {base_model: minilm-l6, kind: perturbed, alpha: 5, seed: 3" in printed
    assert path.read_text() == stale  # untouched without --write
    assert main(["params", "check", str(path)]) == 2
    assert "members does not match the perturb grid" in capsys.readouterr().err
