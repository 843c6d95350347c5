"""Benchmark: batched token-vector extraction vs. the paper's one-sequence-at-a-time loop.

Same 500 corpus sequences (the first of data/corpus/sequences.jsonl; if that file is not built
yet, sentences of gensim's packaged Lee news corpus), minilm-l6 on CPU, both in this process:
prints both times, the speed-up, the max abs difference of the vectors, tokens/s, and tokens/s as
a fraction of what this CPU's measured float32 matrix-multiply rate allows for the model's FLOPs.

    python bench/embed.py [--n 500] [--model minilm-l6] [--repeats 2]

Both times include loading the model. Timings on shared machines swing (2× was seen): each
method runs ``--repeats`` times, interleaved, the best time counts, and the load average is
printed so a contended run can be recognised.
"""

from __future__ import annotations

import argparse
import os
import re
import time
from pathlib import Path

import numpy as np
import torch

from latentgeo.geometry.embed import embed_texts, truncation_limit
from latentgeo.io import read_sequences
from latentgeo.models.registry import load_config, load_encoder, load_tokenizer

from study_files import study_files

CORPUS = study_files().sequences  # the embed stage's corpus, as dvc.yaml names it


def bench_texts(n: int) -> tuple[list[str], str]:
    """The first ``n`` corpus sequences, or Lee-corpus sentences when the corpus is not built."""
    if CORPUS.is_file():
        return read_sequences(CORPUS)[:n], str(CORPUS)
    import gensim

    lee = Path(gensim.__file__).parent / "test" / "test_data" / "lee_background.cor"
    sentences = []
    for doc in lee.read_text(encoding="utf-8").splitlines():
        sentences += [s.strip() for s in re.split(r"(?<=[.!?])\s+", doc) if len(s.split()) >= 3]
    return sentences[:n], f"{lee} (sentences)"


def one_at_a_time(model_name: str, texts: list[str]) -> tuple[list[np.ndarray], float]:
    """The paper's loop: each sequence alone, no padding. Returns vectors and seconds.

    The time includes loading the model and tokenizer, as the batched extractor's does.
    """
    start = time.perf_counter()
    tok = load_tokenizer(model_name)
    model = load_encoder(model_name)
    limit = truncation_limit(model.config)
    out = []
    with torch.inference_mode():
        for text in texts:
            enc = tok(text, truncation=True, max_length=limit, return_tensors="pt")
            out.append(model(**enc).last_hidden_state[0].numpy())
    return out, time.perf_counter() - start


def matmul_rate(m: int, k: int, n: int, seconds: float = 1.0) -> float:
    """Measured float32 GEMM rate (FLOP/s) for (m×k)·(k×n) on this CPU, all threads."""
    a, b = torch.randn(m, k), torch.randn(k, n)
    for _ in range(3):
        a @ b
    reps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        a @ b
        reps += 1
    return 2.0 * m * k * n * reps / (time.perf_counter() - start)


def dense_flops(config, lengths: np.ndarray) -> float:
    """Forward FLOPs of a BERT-type encoder's projections and feed-forward over sequences of
    ``lengths``: 2·(4d² + 2·d·d_ff) per layer and token."""
    d, ff = config.hidden_size, config.intermediate_size
    return config.num_hidden_layers * 2.0 * (4 * d * d + 2 * d * ff) * float(lengths.sum())


def attention_flops(config, lengths: np.ndarray) -> float:
    """Forward FLOPs of the attention scores and weighted sums: 2·2·n·d per layer and token of a
    sequence of n tokens (no padding)."""
    n = lengths.astype(np.float64)
    return config.num_hidden_layers * 4.0 * config.hidden_size * float((n**2).sum())


def model_flops(config, lengths: np.ndarray) -> float:
    """Forward FLOPs of a BERT-type encoder over sequences of ``lengths`` (no padding)."""
    return dense_flops(config, lengths) + attention_flops(config, lengths)


def time_by_operator(model_name: str, texts: list[str]) -> dict[str, float]:
    """Seconds of one batched extraction by kind of operator (torch profiler, self CPU time):
    ``dense`` (the projections and feed-forward: ``addmm``/``mm``), ``attention`` (the fused
    scaled-dot-product kernel or its ``bmm``/``softmax`` parts), ``other`` (the rest)."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        embed_texts(model_name, texts, progress=False, device="cpu")
    seconds = {"dense": 0.0, "attention": 0.0, "other": 0.0}
    for event in prof.key_averages():
        name, t = event.key, event.self_cpu_time_total / 1e6
        if name in ("aten::addmm", "aten::mm"):
            seconds["dense"] += t
        elif "scaled_dot_product" in name or name in ("aten::bmm", "aten::_softmax"):
            seconds["attention"] += t
        else:
            seconds["other"] += t
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--model", default="minilm-l6")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    torch.set_num_threads(os.cpu_count() or 1)
    texts, source = bench_texts(args.n)
    config = load_config(args.model)
    print(f"{len(texts)} sequences from {source}; model {args.model}; CPU, {torch.get_num_threads()} threads")
    print("load average before (1, 5, 15 min): " + ", ".join(f"{x:.2f}" for x in os.getloadavg()))

    loop_times, batch_times = [], []
    for _ in range(args.repeats):
        ref, t = one_at_a_time(args.model, texts)
        loop_times.append(t)
        start = time.perf_counter()  # includes loading the model, like the loop's time
        res = embed_texts(args.model, texts, progress=False, device="cpu")
        batch_times.append(time.perf_counter() - start)
    t_loop, t_batch = min(loop_times), min(batch_times)
    diff = max(float(np.abs(res.rows_of(i) - r).max()) for i, r in enumerate(ref))

    flops = model_flops(config, res.lengths)
    d, ff = config.hidden_size, config.intermediate_size
    rate = matmul_rate(4096, d, ff)  # the model's own feed-forward GEMM shape
    tok_s = res.n_tokens / t_batch
    ceiling = rate / (flops / res.n_tokens)
    print(f"tokens: {res.n_tokens} (mean {res.n_tokens / len(texts):.1f}/sequence, limit {res.truncation_limit})")
    print(f"one-at-a-time loop: {t_loop:8.2f} s   {res.n_tokens / t_loop:9.0f} tokens/s   (runs: "
          + ", ".join(f"{t:.2f}" for t in loop_times) + ")")
    print(f"batched extractor:  {t_batch:8.2f} s   {tok_s:9.0f} tokens/s   (runs: "
          + ", ".join(f"{t:.2f}" for t in batch_times) + ")")
    print(f"speed-up: {t_loop / t_batch:.2f}x")
    print(f"max abs difference: {diff:.2e} (float32; target <= 1e-4)")
    print(f"model FLOPs: {flops / res.n_tokens / 1e6:.1f} MFLOP/token; measured GEMM rate "
          f"(4096x{d} @ {d}x{ff}, float32): {rate / 1e9:.1f} GFLOP/s")
    print("load average after (1, 5, 15 min): " + ", ".join(f"{x:.2f}" for x in os.getloadavg()))
    print(f"FLOP-bound ceiling: {ceiling:.0f} tokens/s; batched reaches {tok_s / ceiling:.0%} of it "
          f"(loop: {res.n_tokens / t_loop / ceiling:.0%})")

    # Where the batched time goes: if its dense GEMMs already run at the measured GEMM rate, the
    # loop's time over the GEMMs' alone bounds any speed-up that float32 on this CPU allows.
    parts = time_by_operator(args.model, texts)
    dense = dense_flops(config, res.lengths)
    print("batched time by operator (profiled run): " + ", ".join(f"{k} {v:.2f} s" for k, v in parts.items())
          + f"; dense GEMMs at {dense / parts['dense'] / 1e9:.1f} GFLOP/s "
          f"({dense / parts['dense'] / rate:.0%} of the measured rate)")
    print(f"speed-up bound with everything but the dense GEMMs free: {t_loop / parts['dense']:.2f}x")


if __name__ == "__main__":
    main()
