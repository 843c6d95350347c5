"""Fine-tuning end to end on a tiny random BERT: it learns, writes its record, refuses bad input."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import pytest

from latentgeo.cli import main
from latentgeo.downstream.finetune import FinetuneSettings
from latentgeo.stages.finetune import finetune_task
from latentgeo.io import read_json

from test_downstream_datasets_io import GLUE_FIXTURES, glue_fixture_loader, write_glue, write_offline

pytestmark = pytest.mark.slow  # fine-tunes models with transformers' Trainer

FRUIT = "apple banana cherry grape lemon mango orange peach pear plum".split()
VEHICLES = "truck train plane boat bicycle rocket tram bus ship car".split()
PARAMS = Path(__file__).resolve().parents[1] / "params.yaml"


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """A 32-wide model gains nothing from threads; on a busy 2-core machine they stall each other."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    """A 2-layer, 32-wide random BERT with the MiniLM tokenizer, saved as a model folder."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    from latentgeo.models.packaged import packaged_model_path

    folder = tmp_path_factory.mktemp("models") / "tiny"
    tokenizer = AutoTokenizer.from_pretrained(packaged_model_path("minilm-l6"))
    torch.manual_seed(0)
    config = BertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, vocab_size=tokenizer.vocab_size)
    BertModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    (folder / "latentgeo.json").write_text(json.dumps({"model_id": "tiny-a0-s1", "alpha": 0.0}))
    return folder


def separable_sentences(n: int, seed: int) -> list[dict]:
    """Label 1: only fruit words; label 0: only vehicle words (3–12 words, balanced)."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        words = FRUIT if i % 2 else VEHICLES
        rows.append({"sentence": " ".join(rng.choice(words) for _ in range(rng.randint(3, 12))),
                     "label": i % 2})
    return rows


def pair_rows(n: int) -> list[dict]:
    return [{"sentence1": " ".join(FRUIT[: 2 + i % 5]), "sentence2": " ".join(VEHICLES[: 1 + i % 7]),
             "label": i % 2} for i in range(n)]


@pytest.fixture
def offline_dir(tmp_path) -> Path:
    root = tmp_path / "offline"
    write_offline(root, "wiki-acceptability",
                  {"train": separable_sentences(96, 0), "validation": separable_sentences(64, 1)})
    write_offline(root, "wiki-adjacency", {"train": pair_rows(16), "validation": pair_rows(8)})
    return root


def test_tiny_model_learns_a_separable_task(tiny_model, offline_dir, tmp_path, capsys):
    settings = FinetuneSettings(learning_rate=1e-2, epochs=2, batch_size=8, max_length=16, seed=0)
    out = tmp_path / "scores.json"
    result = finetune_task(tiny_model, "wiki-acceptability", offline_dir, out, settings,
                           show_progress=False)
    assert read_json(out) == json.loads(json.dumps(result))  # what is returned is what is written
    metrics = result["metrics"]["validation"]
    assert metrics["accuracy"] >= 0.9, metrics  # a random head on a random encoder scores ~0.5
    assert result["score"] == metrics["matthews"] >= 0.8
    assert metrics["loss"] < 0.95 * math.log(2)  # below the loss of a uniform prediction
    assert len(result["log_history"]) == 24  # 96 examples / batch 8 × 2 epochs, logged every step
    assert result["model"] == {"model_id": "tiny-a0-s1", "alpha": 0.0}
    assert (result["task"], result["suite"], result["metric"]) == ("wiki-acceptability", "offline", "matthews")
    assert (result["train_size"], result["eval_size"], result["chance"]) == (96, 64, 0.0)
    assert result["settings"] == {"learning_rate": 0.01, "epochs": 2, "batch_size": 8,
                                  "gradient_accumulation": 1, "max_length": 16, "seed": 0,
                                  "precision": "fp32"}
    assert result["wall_time_s"] > 0
    assert "'loss'" not in capsys.readouterr().out  # quiet: the log is in the record, not printed


@pytest.mark.parametrize("precision, product_dtype", [("fp32", "float32"), ("bf16", "bfloat16")])
def test_precision_sets_the_dtype_of_the_matrix_products(tiny_model, offline_dir, tmp_path,
                                                         precision, product_dtype):
    """bf16 runs the encoder's linear layers in bfloat16 while the weights stay float32, and the
    tiny model still learns the separable task; fp32 keeps everything float32."""
    import torch

    from latentgeo.downstream.finetune import build_trainer, load_classifier, tokenize_split
    from latentgeo.downstream.datasets_io import load_task_data
    from latentgeo.models.registry import load_tokenizer
    from latentgeo.downstream.tasks import get_task

    task = get_task("wiki-acceptability")
    settings = FinetuneSettings(learning_rate=1e-2, epochs=2, batch_size=8, max_length=16, seed=0,
                                precision=precision)
    data = load_task_data(task, offline_dir)
    tokenizer = load_tokenizer(tiny_model)
    classifier = load_classifier(tiny_model, task, settings.seed)
    seen: set[torch.dtype] = set()
    classifier.bert.encoder.layer[0].intermediate.dense.register_forward_hook(
        lambda module, inputs, output: seen.add(output.dtype))
    trainer = build_trainer(classifier, tokenizer, tokenize_split(data.train, tokenizer, task, 16),
                            task, settings, tmp_path, show_progress=False)
    trainer.train()
    assert seen == {getattr(torch, product_dtype)}
    assert {p.dtype for p in trainer.model.parameters()} == {torch.float32}  # float32 master weights
    metrics = trainer.evaluate(tokenize_split(data.validation["validation"], tokenizer, task, 16))
    assert metrics["eval_accuracy"] >= 0.9, metrics


def test_precision_is_checked_before_anything_loads(monkeypatch):
    import warnings

    import torch

    from latentgeo.downstream import precision as finetune
    from latentgeo.errors import LatentgeoError

    with pytest.raises(LatentgeoError, match="precision = 'fp16' \\(allowed: fp32, bf16\\)"):
        FinetuneSettings(learning_rate=1e-3, epochs=1, batch_size=2, precision="fp16")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(finetune, "native_bf16_cpu", lambda: False)
    with pytest.warns(UserWarning, match="bfloat16 is emulated and slower than float32"):
        finetune.check_precision_supported("bf16")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # fp32 never warns; an unknown CPU is not warned about
        finetune.check_precision_supported("fp32")
        monkeypatch.setattr(finetune, "native_bf16_cpu", lambda: None)
        finetune.check_precision_supported("bf16")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: False)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda: "Old GPU")
    with pytest.raises(LatentgeoError, match="GPU Old GPU has no bfloat16 support"):
        finetune.check_precision_supported("bf16")


def _cli(*argv: str) -> int:
    return main(["finetune", *argv])


def test_cli_pair_task_is_seeded_and_saves_the_model(tiny_model, offline_dir, tmp_path, capsys):
    common = ["--model", str(tiny_model), "--task", "wiki-adjacency", "--data-dir", str(offline_dir),
              "--params", str(PARAMS), "--epochs", "1", "--batch-size", "4", "--max-length", "16",
              "--train-size", "12", "--eval-size", "all", "--lr", "1e-3"]
    saved = tmp_path / "ft-model"
    assert _cli(*common, "--out", str(tmp_path / "a.json"), "--save-model", str(saved)) == 0
    assert "accuracy_f1" in capsys.readouterr().out
    assert _cli(*common, "--out", str(tmp_path / "b.json")) == 0
    a, b = read_json(tmp_path / "a.json"), read_json(tmp_path / "b.json")
    assert a["log_history"] == b["log_history"] and a["metrics"] == b["metrics"]  # same seed, same run
    assert set(a["metrics"]["validation"]) == {"accuracy", "f1", "accuracy_f1", "loss", "n"}
    assert (a["train_size"], a["eval_size"]) == (12, 8)
    assert a["settings"]["learning_rate"] == 1e-3 and a["settings"]["batch_size"] == 4

    from transformers import AutoModelForSequenceClassification

    assert (saved / "model.safetensors").is_file()
    record = read_json(saved / "latentgeo.json")
    assert record["model_id"] == "tiny-a0-s1-ft-wiki-adjacency"
    assert record["finetuned_from"]["model_id"] == "tiny-a0-s1"
    reloaded = AutoModelForSequenceClassification.from_pretrained(saved, use_safetensors=True)
    assert reloaded.config.num_labels == 2


def test_glue_regression_task_through_the_loader(tiny_model, tmp_path):
    root = tmp_path / "glue"
    write_glue(root, "stsb", GLUE_FIXTURES["stsb"])
    settings = FinetuneSettings(learning_rate=1e-3, epochs=1, batch_size=2, max_length=16, seed=0)
    result = finetune_task(tiny_model, "stsb", None, tmp_path / "stsb.json", settings,
                           loader=glue_fixture_loader(root, tmp_path / "cache"), show_progress=False)
    assert (result["suite"], result["metric"], result["eval_size"]) == ("glue", "pearson_spearman", 3)
    assert set(result["metrics"]["validation"]) == {"pearson", "spearman", "pearson_spearman", "loss", "n"}
    assert -1.0 <= result["score"] <= 1.0


def _bad_data(root: Path) -> None:
    rows = separable_sentences(8, 0)
    rows[5]["label"] = 3
    write_offline(root / "range", "wiki-acceptability", {"train": rows, "validation": rows[:4]})
    missing = [{"text": r["sentence"], "label": r["label"]} for r in separable_sentences(8, 0)]
    write_offline(root / "field", "wiki-acceptability", {"train": missing, "validation": missing})
    write_offline(root / "empty", "wiki-acceptability", {"train": separable_sentences(8, 0), "validation": []})


@pytest.mark.parametrize(
    "args, message",
    [
        (["--task", "nope"], "unknown task 'nope'"),
        (["--data-dir", "{tmp}/range"], "record 6: label 3 is out of range; allowed: 0..1"),
        (["--data-dir", "{tmp}/field"], "record 1 has no field 'sentence'"),
        (["--data-dir", "{tmp}/empty"], "validation.jsonl: the split is empty"),
        (["--data-dir", "{tmp}/absent"], "task files not found"),
        (["--model", "{tmp}/noweights"], "holds no .safetensors weights"),
        (["--model", "no-such-model"], "unknown model 'no-such-model'"),
        (["--task", "cola"], "GLUE task 'cola'"),
        (["--lr", "0"], "learning_rate = 0.0"),
        (["--precision", "fp16"], "precision = 'fp16' (allowed: fp32, bf16)"),
        (["--params", "{tmp}/missing.yaml"], "parameters file not found"),
    ],
)
def test_cli_refuses_bad_input_before_training(tiny_model, tmp_path, capsys, args, message):
    _bad_data(tmp_path)
    (tmp_path / "noweights").mkdir()
    (tmp_path / "noweights" / "config.json").write_text('{"model_type": "bert"}')
    base = {"--model": str(tiny_model), "--task": "wiki-acceptability",
            "--data-dir": str(tmp_path / "range"), "--params": str(PARAMS)}
    for flag, value in zip(args[::2], args[1::2]):
        base[flag] = value.format(tmp=tmp_path)
    out = tmp_path / "out" / "scores.json"
    argv = [x for kv in base.items() for x in kv] + ["--out", str(out), "--save-model", str(tmp_path / "m")]
    assert _cli(*argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not out.exists() and not (tmp_path / "m").exists()
    assert not list((tmp_path / "out").glob("*")) if (tmp_path / "out").exists() else True


def test_cli_refuses_existing_output(tiny_model, offline_dir, tmp_path, capsys):
    out = tmp_path / "scores.json"
    out.write_text("{}")
    assert _cli("--model", str(tiny_model), "--task", "wiki-acceptability", "--out", str(out),
                "--data-dir", str(offline_dir), "--params", str(PARAMS)) == 2
    assert "already exists" in capsys.readouterr().err
    assert out.read_text() == "{}"
