"""Follow-up tokens per second and fraction of bf16 peak on a GPU, with a random-weight 8B Llama.

Builds a Llama-3-8B-shaped model (32 layers, hidden 4096, 32 query / 8 key-value heads of 128,
MLP 14336, vocabulary 128256) with random weights directly on the GPU (nothing downloaded; the
embedded model's tokenizer supplies token ids), a conversation of about `--context` tokens from
MT-Bench turns, and the 120 bundled follow-ups. It reports the engine's time per reply,
follow-up tokens per second, achieved FLOP/s (2 x parameters x (conversation + follow-up
tokens) / time), the fraction of the GPU's bf16 matrix-multiply peak (measured here, and the
nominal figure if known), the peak GPU memory, and checks two follow-ups against one full
forward pass each.

    .venv/bin/python benchmarks/gpu_8b_random.py --device cuda --context 4000

`--shape '{"hidden_size": 256, ...}'` overrides fields of the Llama config (a small shape runs
the whole script on a CPU in seconds, which is how it is tested without a GPU).

Random weights make the scores meaningless but the arithmetic identical to a trained model's.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.bench_scoring import MT_BENCH, _by_id, engine_arithmetic  # noqa: E402
from core.engine.config import ScoringConfig  # noqa: E402
from core.engine.conversation import from_utterances  # noqa: E402
from core.engine.followups import default_followups  # noqa: E402
from core.engine.models import LoadedModel, load_model, resolve_device  # noqa: E402
from core.engine.rendering import render  # noqa: E402
from core.engine.scorer import FLRScorer  # noqa: E402

NOMINAL_BF16_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0, "L40S": 362.0}  # dense


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--dtype", default="bfloat16")
    parser.add_argument("--context", type=int, default=4000, help="conversation tokens (about)")
    parser.add_argument("--batch-size", type=int, default=512,
                        help="engine batch size (x64 tokens per pass; capped by free memory)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--layers", type=int, default=32, help="fewer for a quick try")
    parser.add_argument("--shape", type=json.loads, default={},
                        help="JSON object of LlamaConfig fields that replace the 8B shape's")
    args = parser.parse_args(argv)

    from transformers import LlamaConfig, LlamaForCausalLM

    device = resolve_device(args.device)
    dtype = getattr(torch, args.dtype)
    tokenizer = load_model(ScoringConfig(device="cpu", dtype="float32")).tokenizer
    shape = dict(
        vocab_size=128256, hidden_size=4096, intermediate_size=14336,
        num_hidden_layers=args.layers, num_attention_heads=32, num_key_value_heads=8,
        head_dim=128, max_position_embeddings=max(8192, 2 * args.context),
        rope_theta=500000.0, tie_word_embeddings=False,
    )
    config = LlamaConfig(**{**shape, **args.shape})
    start = time.perf_counter()
    torch.manual_seed(0)
    with torch.device(device):
        model = LlamaForCausalLM(config).to(dtype)
    model.eval()
    params = model.num_parameters()
    print(f"random Llama: {params / 1e9:.2f}B parameters, built in {time.perf_counter() - start:.0f} s "
          f"on {torch.cuda.get_device_name(device) if device.type == 'cuda' else device}")

    scoring = ScoringConfig(device=str(device), dtype=args.dtype, batch_size=args.batch_size,
                            max_length=config.max_position_embeddings)
    loaded = LoadedModel(model, tokenizer, device, dtype, "random-llama-8b", "random-llama-8b")
    scorer = FLRScorer(loaded, scoring)
    conversation = long_conversation(tokenizer, args.context)
    followups = default_followups()
    texts = list(dict.fromkeys(followups.utterances()))
    requests = render(tokenizer, conversation, texts, mode="base", aggregation="mean",
                      max_length=scoring.max_length).requests
    prefix = min(r.positions[0] + 1 for r in requests)
    followup_tokens = sum(len(r.positions) for r in requests)
    print(f"conversation {prefix} tokens, {len(texts)} follow-ups, {followup_tokens} follow-up tokens")

    fast = scorer._score_shared_prefix(requests[:2])
    reference = scorer.score_reference(requests[:2])
    print(f"two follow-ups vs one full pass each: |difference| {max(abs(a - b) for a, b in zip(fast, reference)):.3e}")

    scorer.score(conversation, followups)  # warm-up
    _sync(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    times = []
    for _ in range(args.repeats):
        _sync(device)
        t0 = time.perf_counter()
        scorer.score(conversation, followups)
        _sync(device)
        times.append(time.perf_counter() - t0)
    seconds = statistics.median(times)
    peak_memory = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
    achieved = 2 * params * (prefix + followup_tokens) / seconds
    own_ops, distinct = engine_arithmetic(scorer, requests, prefix)
    measured_peak = matmul_peak(device, dtype)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    nominal = next((v for k, v in NOMINAL_BF16_TFLOPS.items() if k in name), None)
    print(f"engine: median {seconds:.3f} s per reply of {[round(t, 3) for t in times]}")
    print(f"follow-up tokens per second: {followup_tokens / seconds:,.0f}")
    for label, flops in (("floor arithmetic (2 x parameters x all tokens)", achieved),
                         (f"engine's own linear-layer arithmetic ({distinct} distinct follow-up "
                          "token prefixes)", own_ops / seconds)):
        print(f"achieved, {label}: {flops / 1e12:.2f} TFLOP/s = {flops / measured_peak:.0%} of the "
              f"{measured_peak / 1e12:.1f} TFLOP/s measured {args.dtype} matmul peak"
              + (f", {flops / (nominal * 1e12):.0%} of the nominal {nominal:.0f}" if nominal else ""))
    if peak_memory is not None:
        print(f"peak GPU memory allocated: {peak_memory:.1f} GiB")
    return 0


def long_conversation(tokenizer, tokens: int):
    """MT-Bench questions and GPT-4 answers, turn after turn, until about `tokens` tokens."""
    questions = _by_id(MT_BENCH / "question.jsonl")
    answers = _by_id(MT_BENCH / "reference_answer_gpt-4.jsonl")
    utterances: list[str] = []
    count = 0
    for qid in sorted(answers):
        for question, answer in zip(questions[qid]["turns"], answers[qid]["choices"][0]["turns"]):
            utterances += [question, answer]
            count += len(tokenizer(question + answer).input_ids) + 10
            if count >= tokens:
                return from_utterances(utterances)
    return from_utterances(utterances)


def matmul_peak(device: torch.device, dtype: torch.dtype, size: int = 8192) -> float:
    if device.type != "cuda":
        size = 1024
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    best = 0.0
    for _ in range(10):
        _sync(device)
        t0 = time.perf_counter()
        for _ in range(5):
            torch.matmul(a, b)
        _sync(device)
        best = max(best, 5 * 2 * size**3 / (time.perf_counter() - t0))
    return best


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


if __name__ == "__main__":
    raise SystemExit(main())
