"""Seconds per scored reply: the paper's loop, lm-evaluation-harness, and the FLR Studio engine.

One process, one model, the same two conversations (built from MT-Bench question 106, two
utterances, about 110 tokens; and question 105, four utterances, about 520 tokens) and the same
120 follow-ups (the bundled set). For each conversation it times

  (a) the paper's approach: one full forward pass per follow-up, full logits
      (`FLRScorer.score_reference`);
  (b) lm-evaluation-harness `HFLM._loglikelihood_tokens` (what `HFLM.loglikelihood` runs after
      tokenizing) on the same (context, continuation) token ids, so its continuation is exactly
      the follow-up's own tokens as the engine defines them;
  (c) the engine: `FLRScorer.score(conversation, followups)`, rendering included (and, in the
      last column, `score_requests` on the baselines' token ids, without rendering);

checks that the scores agree (engine vs loop per-token means; engine x token count vs lm-eval's
sums), and prints the engine's distance from the compute floor:
ops = 2 x parameters x (conversation tokens + follow-up tokens), divided by the best matrix-
multiply throughput measured in this run on shapes of this model. Because other processes on
a small machine change every number (the load average is printed), the engine's distance from
the floor is also given pair by pair: after each engine run the throughput is measured again,
and the median of (run time / floor at that moment) is printed, so a slow phase of the machine
slows both sides of a pair. The floor counts every conversation and follow-up token through the
whole model; the engine does less (no output head on conversation tokens, shared follow-up
tokens once), so it also prints its own linear-layer arithmetic and the throughput it ran at.

Then, on this machine's CPU (its name and bf16 flags printed), fp32 against bf16
(`--skip-precision` leaves it out): the engine's time on the long reply in each, the
matrix-multiply rate and the full-compute floor in each (both measured in this run), the ratio
bf16 / fp32, what `--dtype auto` picks here, and the agreement of bf16 with fp32 on held-out
pairs (`--pairs N`, default 200: half HH-RLHF helpful-base test, half LLMBar Natural): the
largest and mean per-follow-up difference, the share of pairs whose preferred reply changes,
and the overall FLR in each (`decision_agreement`). `--int8` also times int8 dynamic
quantisation of the decoder's linear layers on the long reply and compares its scores with fp32's.

    .venv/bin/python benchmarks/bench_scoring.py                     # embedded, CPU, float32
    .venv/bin/python benchmarks/bench_scoring.py --pairs 40          # a shorter fp32/bf16 comparison
    .venv/bin/python benchmarks/bench_scoring.py --device cuda --dtype bfloat16 --model M
    .venv/bin/python benchmarks/bench_scoring.py --random-config config.json --device cuda

lm_eval is a benchmark-only dependency: `pip install -r benchmarks/requirements.txt`.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.engine.config import ScoringConfig  # noqa: E402
from core.engine.conversation import Conversation, from_utterances  # noqa: E402
from core.engine.followups import default_followups  # noqa: E402
from core.engine.models import LoadedModel, load_model, resolve_device, resolve_dtype  # noqa: E402
from core.engine.rendering import Request, render  # noqa: E402
from core.engine.scorer import FLRScorer  # noqa: E402
from core.engine.fast.trie import SuffixTrie  # noqa: E402
from core.engine.precision import cpu_info, decide_dtype  # noqa: E402
from core.errors import ConversationError  # noqa: E402

MT_BENCH = ROOT.parent / "shared" / "data" / "mt_bench_questions"
PAIR_SETS = ("hh_rlhf/helpful-base-test.jsonl.gz", "llmbar/LLMBar_Natural.json")  # held-out pairs, half each
CONVERSATIONS = {"2-turn": (106, 2), "long": (105, 4)}  # MT-Bench question id, utterances


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="embedded", help="model to load (default: embedded)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--random-config", metavar="CONFIG.json",
                        help="build a random-weight model from this transformers config instead "
                             "(tokenizer: --model's); for GPU runs without downloading weights")
    parser.add_argument("--data", type=Path, default=MT_BENCH, help="MT-Bench questions folder")
    parser.add_argument("--conversations", default="2-turn,long", help="which of: 2-turn,long")
    parser.add_argument("--repeats", type=int, default=5, help="engine timings (median)")
    parser.add_argument("--baseline-repeats", type=int, default=1,
                        help="timings of the paper loop and lm-eval (each is 120 passes already)")
    parser.add_argument("--batch-size", type=int, default=ScoringConfig().batch_size,
                        help="engine batch size (follow-ups of 64 tokens per pass)")
    parser.add_argument("--lm-eval-batch-size", type=int, default=8)
    parser.add_argument("--skip-loop", action="store_true")
    parser.add_argument("--skip-lm-eval", action="store_true")
    parser.add_argument("--skip-precision", action="store_true",
                        help="leave out the fp32 / bf16 comparison")
    parser.add_argument("--pairs", type=int, default=200,
                        help="held-out pairs for the bf16 / fp32 agreement (0: none)")
    parser.add_argument("--pair-data", type=Path,
                        help="folder holding " + " and ".join(PAIR_SETS) + " (default: --data's parent)")
    parser.add_argument("--int8", action="store_true",
                        help="also time int8 dynamic quantisation of the decoder's linear layers "
                             "(torch.ao, per output channel) on the long reply, against fp32")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    load_start = os.getloadavg()
    config = ScoringConfig(model=args.model, device=args.device, dtype=args.dtype,
                           batch_size=args.batch_size, max_length=None)
    loaded = load_model(config)
    if args.random_config:
        loaded = random_model(loaded, Path(args.random_config), config)
    scorer = FLRScorer(loaded, config)
    params = loaded.model.num_parameters()
    followups = default_followups()
    texts = list(dict.fromkeys(followups.utterances()))
    print(f"model: {loaded.name} ({params / 1e6:.1f}M parameters), {loaded.device}, "
          f"{str(loaded.dtype).removeprefix('torch.')}, torch threads {torch.get_num_threads()}, "
          f"{len(texts)} follow-ups")
    print(f"load average at start: {_load(load_start)}")

    lm = None if args.skip_lm_eval else lm_eval_model(loaded, args.lm_eval_batch_size)
    throughput = matmul_throughput(loaded)
    rows = []
    for name in [n.strip() for n in args.conversations.split(",") if n.strip()]:
        conversation = mt_bench_conversation(args.data, *CONVERSATIONS[name])
        rows.append(bench_one(name, conversation, scorer, followups, texts, lm, params, args))
    throughput = max(throughput, matmul_throughput(loaded))
    load_end = os.getloadavg()

    print(f"\nmatrix-multiply throughput (best of several, this run): {throughput / 1e9:.1f} GFLOP/s")
    print(f"load average at end: {_load(load_end)}\n")
    header = ("| conversation | tokens (conv + follow-ups) | paper loop s/reply | lm-eval s/reply "
              "| engine s/reply | engine vs loop | engine vs lm-eval | compute floor s | "
              "engine / floor | engine / floor, pairwise | engine without rendering s (/ floor) |")
    print(header)
    print("|---" * (header.count("|") - 1) + "|")
    for row in rows:
        floor = 2 * params * (row["conversation_tokens"] + row["followup_tokens"]) / throughput
        row["floor_s"] = floor
        print(f"| {row['name']} | {row['conversation_tokens']} + {row['followup_tokens']} | "
              f"{_fmt(row.get('loop_s'))} | {_fmt(row.get('lm_eval_s'))} | {row['engine_s']:.3f} | "
              f"{_ratio(row.get('loop_s'), row['engine_s'])} | "
              f"{_ratio(row.get('lm_eval_s'), row['engine_s'])} | {floor:.3f} | "
              f"{row['engine_s'] / floor:.2f} | {row['engine_floor_pairwise']:.2f} | "
              f"{row['engine_ids_s']:.3f} "
              f"({row['engine_ids_s'] / floor:.2f}) |")
    print()
    for row in rows:
        row["engine_flops"] = row["engine_ops"] / row["engine_s"]
        print(f"{row['name']}: the engine's own linear-layer arithmetic ({row['engine_ops'] / 1e9:.0f} GFLOP) "
              f"ran at {row['engine_flops'] / 1e9:.0f} GFLOP/s, {row['engine_flops'] / throughput:.0%} of "
              "the best measured matrix-multiply throughput")
    for row in rows:
        for line in row["agreement"]:
            print(f"{row['name']}: {line}")
    precision = None if args.skip_precision else compare_precision(config, followups, texts, args)
    if args.json:
        args.json.write_text(json.dumps({
            "model": loaded.name, "parameters": params, "device": str(loaded.device),
            "dtype": str(loaded.dtype), "threads": torch.get_num_threads(),
            "load_start": load_start, "load_end": load_end,
            "matmul_flops": throughput, "rows": rows, "precision": precision,
        }, indent=2))
    return 0 if all(row["agree"] for row in rows) else 1


def bench_one(name: str, conversation: Conversation, scorer: FLRScorer, followups: Any,
              texts: list[str], lm: Any, params: int, args: argparse.Namespace) -> dict[str, Any]:
    tokenizer = scorer.loaded.tokenizer
    requests = render(tokenizer, conversation, texts, mode="base", aggregation="mean",
                      max_length=scorer.max_length).requests
    prefix = _common_prefix(requests)
    followup_tokens = sum(len(r.positions) for r in requests)
    print(f"\n[{name}] conversation {prefix} tokens (up to the follow-up's first token), "
          f"{followup_tokens} follow-up tokens, {sum(len(r.ids) for r in requests)} tokens "
          "in 120 separate sequences")
    row: dict[str, Any] = {"name": name, "conversation_tokens": prefix,
                           "followup_tokens": followup_tokens, "agreement": []}
    row["engine_ops"], distinct = engine_arithmetic(scorer, requests, prefix)
    ops = 2 * params * (prefix + followup_tokens)
    print(f"  the engine's own arithmetic: {distinct} distinct follow-up token prefixes (token trie) "
          f"instead of {followup_tokens - len(requests)} suffix tokens, {distinct + 1} output-head "
          f"rows instead of {followup_tokens}: {row['engine_ops'] / 1e9:.0f} GFLOP in the linear "
          f"layers, {row['engine_ops'] / ops:.0%} of the floor's {ops / 1e9:.0f}")

    engine_scores = _flat(scorer.score(conversation, followups), texts)  # warm-up + self-check
    times, ratios = [], []
    for _ in range(max(1, args.repeats)):
        (seconds,) = _timed(lambda: scorer.score(conversation, followups), 1, scorer.loaded)
        times.append(seconds)
        ratios.append(seconds / (ops / matmul_throughput(scorer.loaded, repeats=3)))
    row["engine_s"] = statistics.median(times)
    row["engine_all_s"] = times
    row["engine_floor_pairwise"] = statistics.median(ratios)
    row["engine_floor_pairwise_all"] = ratios
    print(f"  engine: median {row['engine_s']:.3f} s of {[round(t, 3) for t in times]}")
    print(f"  engine / floor measured right after each run: median {row['engine_floor_pairwise']:.2f} "
          f"of {[round(r, 2) for r in ratios]}")
    times = _timed(lambda: scorer.score_requests(requests), args.repeats, scorer.loaded)
    row["engine_ids_s"] = statistics.median(times)
    print(f"  engine on the same token ids as the baselines (no rendering): median "
          f"{row['engine_ids_s']:.3f} s of {[round(t, 3) for t in times]}")

    agree = True
    tolerance = 1e-4 if scorer.loaded.dtype == torch.float32 else 5e-2
    if not args.skip_loop:
        with _attention(scorer.loaded, "sdpa"):
            reference: list[float] = []
            times = _timed(lambda: reference.__setitem__(slice(None), scorer.score_reference(requests)),
                           args.baseline_repeats, scorer.loaded)
        row["loop_s"] = statistics.median(times)
        worst = max(abs(a - b) for a, b in zip(engine_scores, reference))
        ok = worst <= tolerance
        agree &= ok
        row["agreement"].append(f"engine vs paper loop: max |difference| of per-token mean "
                                f"log-likelihoods {worst:.2e} ({'agree' if ok else 'DISAGREE'}, "
                                f"tolerance {tolerance:g})")
        print(f"  paper loop: {row['loop_s']:.2f} s")
    if lm is not None:
        token_requests = [(("", ""), list(r.ids[:r.positions[0] + 1]), list(r.ids[r.positions[0] + 1:]))
                          for r in requests]
        with _attention(scorer.loaded, "sdpa"):
            results: list[Any] = []
            times = _timed(lambda: results.__setitem__(slice(None), lm._loglikelihood_tokens(
                token_requests, disable_tqdm=True)), args.baseline_repeats, scorer.loaded)
        row["lm_eval_s"] = statistics.median(times)
        sums = [e * len(r.positions) for e, r in zip(engine_scores, requests)]
        worst = max(abs(a - b) for a, b in zip(sums, (s for s, _ in results)))
        ok = worst <= 10 * tolerance
        agree &= ok
        row["agreement"].append(f"engine vs lm-eval: max |difference| of summed log-likelihoods "
                                f"{worst:.2e} ({'agree' if ok else 'DISAGREE'}, tolerance "
                                f"{10 * tolerance:g})")
        print(f"  lm-eval: {row['lm_eval_s']:.2f} s")
    row["agree"] = agree
    return row


Scored = tuple[float, Sequence[float]]  # one reply: (overall FLR, value of each follow-up)


@dataclass(frozen=True)
class Agreement:
    """How far one computation's pairwise scores are from a reference's (bf16 against fp32)."""

    pairs: int
    max_followup_difference: float  # largest |difference| of one follow-up's value
    mean_followup_difference: float  # mean |difference| over every follow-up of every reply
    changed: int  # pairs whose preferred reply differs (chosen, rejected, or a tie)
    reference_flr: float  # mean overall FLR over every reply of every pair
    other_flr: float

    @property
    def changed_share(self) -> float:
        return self.changed / self.pairs

    @property
    def flr_difference(self) -> float:
        return self.other_flr - self.reference_flr


def decision_agreement(reference: Sequence[tuple[Scored, Scored]],
                       other: Sequence[tuple[Scored, Scored]]) -> Agreement:
    """Agreement of `other` with `reference` on the same pairs, each a (chosen, rejected) reply.

    A pair's preferred reply is the one with the higher overall FLR (equal FLRs: a tie), so a
    pair changes when the sign of FLR(chosen) - FLR(rejected) changes, to a tie included."""
    if len(reference) != len(other) or not reference:
        raise ValueError(f"need the same, non-zero number of pairs; got {len(reference)} and {len(other)}")
    differences = []
    for ref_pair, other_pair in zip(reference, other):
        for (_, ref_values), (_, other_values) in zip(ref_pair, other_pair):
            if len(ref_values) != len(other_values):
                raise ValueError("the two computations scored different follow-ups")
            differences += [abs(a - b) for a, b in zip(ref_values, other_values)]

    def preferred(pair: tuple[Scored, Scored]) -> int:
        margin = pair[0][0] - pair[1][0]
        return (margin > 0) - (margin < 0)

    changed = sum(preferred(a) != preferred(b) for a, b in zip(reference, other))
    return Agreement(len(reference), max(differences, default=0.0),
                     statistics.fmean(differences) if differences else 0.0, changed,
                     statistics.fmean(side[0] for pair in reference for side in pair),
                     statistics.fmean(side[0] for pair in other for side in pair))


def held_out_pairs(folder: Path, count: int) -> list[tuple[str, Conversation, Conversation]]:
    """Up to `count` (source, chosen, rejected) pairs, the first ones of each of `PAIR_SETS`
    (half each, the second set taking what the first lacks); rows the reader refuses are skipped."""
    from core.evaluation.detect import detect_benchmarks
    from core.names import COL_CONVERSATION, COL_ERROR, COL_ROW, COL_SIDE

    pairs: list[tuple[str, Conversation, Conversation]] = []
    for k, name in enumerate(PAIR_SETS):
        want = (count - len(pairs)) // (len(PAIR_SETS) - k)
        if want <= 0:
            continue
        (benchmark,) = detect_benchmarks([folder / name])
        frame = benchmark.frame[benchmark.frame[COL_ERROR].isna()]
        for _, rows in frame.groupby(COL_ROW, sort=True):
            sides = dict(zip(rows[COL_SIDE], rows[COL_CONVERSATION]))
            if set(sides) == {"chosen", "rejected"}:
                pairs.append((benchmark.name, sides["chosen"], sides["rejected"]))
                want -= 1
            if want == 0:
                break
    return pairs


def compare_precision(config: ScoringConfig, followups: Any, texts: list[str],
                      args: argparse.Namespace) -> dict[str, Any]:
    """fp32 against bf16 on this machine: the long reply's engine time, the matmul rate and the
    full-compute floor in each, and the agreement on held-out pairs (printed and returned)."""
    cpu = cpu_info()
    device = resolve_device(config.device)
    auto = decide_dtype("auto", device)
    print(f"\nfp32 against bf16 on {device}; CPU: {cpu.describe()}, native bf16: "
          f"{'yes' if cpu.native_bf16 else 'no'}; --dtype auto picks {auto.dtype} ({auto.reason})")
    conversation = mt_bench_conversation(args.data, *CONVERSATIONS["long"])
    result: dict[str, Any] = {"cpu": cpu.describe(), "native_bf16": cpu.native_bf16, "auto": auto.as_dict(),
                              "dtypes": {}}
    scorers = {}
    for dtype in ("float32", "bfloat16"):
        dtype_config, loaded = _load_in(config, dtype, args)
        scorer = scorers[dtype] = FLRScorer(loaded, dtype_config)
        params = loaded.model.num_parameters()
        requests = render(loaded.tokenizer, conversation, texts, mode="base", aggregation="mean",
                          max_length=scorer.max_length).requests
        tokens = _common_prefix(requests) + sum(len(r.positions) for r in requests)
        scorer.score(conversation, followups)  # warm-up and self-check
        times = _timed(lambda: scorer.score(conversation, followups), args.repeats, loaded)
        rate = max(matmul_throughput(loaded), matmul_throughput(loaded))
        engine, floor = statistics.median(times), 2 * params * tokens / rate
        result["dtypes"][dtype] = {"engine_s": engine, "engine_all_s": times, "matmul_flops": rate,
                                   "floor_s": floor, "shared_prefix": scorer.uses_shared_prefix}
    print("| dtype | long reply, engine s | matmul GFLOP/s (this run) | full-compute floor s | engine / floor |")
    print("|---|---|---|---|---|")
    for dtype, row in result["dtypes"].items():
        print(f"| {dtype} | {row['engine_s']:.3f} | {row['matmul_flops'] / 1e9:.1f} | {row['floor_s']:.3f} | "
              f"{row['engine_s'] / row['floor_s']:.2f} |")
    fp32, bf16 = result["dtypes"]["float32"], result["dtypes"]["bfloat16"]
    result["bf16_over_fp32"] = bf16["engine_s"] / fp32["engine_s"]
    print(f"bf16 / fp32 engine time on the long reply: {result['bf16_over_fp32']:.2f} "
          f"(bf16 / fp32 matmul rate: {bf16['matmul_flops'] / fp32['matmul_flops']:.2f})")
    if args.int8:
        result["int8"] = compare_int8(config, scorers["float32"], fp32["engine_s"], conversation, followups,
                                      texts, args)
    if args.pairs > 0:
        result["agreement"] = pair_agreement(scorers, followups, texts, args)
    return result


def compare_int8(config: ScoringConfig, fp32: FLRScorer, fp32_s: float, conversation: Conversation,
                 followups: Any, texts: list[str], args: argparse.Namespace) -> dict[str, Any]:
    """int8 dynamic quantisation (`torch.ao.quantization.quantize_dynamic`, per-output-channel
    weights, activations quantised per tensor at run time) of the decoder's linear layers, the
    output head left as it is: the long reply's engine time (against `fp32_s`, fp32's time on
    it in this run) and its scores against fp32's."""
    import warnings

    from torch.ao import quantization

    dtype_config, loaded = _load_in(config, "float32", args)
    with warnings.catch_warnings():  # torch.ao's quantised modules are deprecated in favour of torchao
        warnings.simplefilter("ignore")
        quantization.quantize_dynamic(loaded.model.get_decoder(),
                                      {torch.nn.Linear: quantization.per_channel_dynamic_qconfig},
                                      inplace=True)
    scorer = FLRScorer(loaded, dtype_config)
    int8_scores = scorer.score(conversation, followups)  # warm-up and self-check
    fast = scorer.uses_shared_prefix
    times = _timed(lambda: scorer.score(conversation, followups), args.repeats if fast else 1, loaded)
    reference = fp32.score(conversation, followups)
    worst = max(abs(a - b) for a, b in zip(_flat(reference, texts), _flat(int8_scores, texts)))
    row = {"engine_s": statistics.median(times), "engine_all_s": times, "fp32_engine_s": fp32_s,
           "shared_prefix": fast, "max_followup_difference": worst,
           "flr": int8_scores.flr, "fp32_flr": reference.flr}
    print(f"int8 dynamic (decoder linears): long reply {row['engine_s']:.3f} s against fp32's "
          f"{fp32_s:.3f} s ({fp32_s / row['engine_s']:.2f}x"
          f"{'' if fast else '; the shared-prefix self-check failed: per-sequence scoring'}); "
          f"overall FLR {int8_scores.flr:.4f} against fp32's {reference.flr:.4f} "
          f"(difference {int8_scores.flr - reference.flr:+.4f}), per-follow-up |difference| max {worst:.4f}")
    return row


def _load_in(config: ScoringConfig, dtype: str, args: argparse.Namespace) -> tuple[ScoringConfig, LoadedModel]:
    """`config` in `dtype` and its model (random weights from `--random-config` when given)."""
    dtype_config = config.with_changes(dtype=dtype)
    loaded = load_model(dtype_config)
    if args.random_config:
        loaded = random_model(loaded, Path(args.random_config), dtype_config)
    return dtype_config, loaded


def pair_agreement(scorers: dict[str, FLRScorer], followups: Any, texts: list[str],
                   args: argparse.Namespace) -> dict[str, Any]:
    """bf16's `decision_agreement` with fp32 on `args.pairs` held-out pairs (printed)."""
    pairs = held_out_pairs(args.pair_data or args.data.parent, args.pairs)
    scored: dict[str, list[tuple[Scored, Scored]]] = {dtype: [] for dtype in scorers}
    seconds = dict.fromkeys(scorers, 0.0)
    sources: dict[str, int] = {}
    skipped = 0
    for source, chosen, rejected in pairs:
        try:
            both = {}
            for dtype, scorer in scorers.items():
                start = time.perf_counter()
                both[dtype] = scorer.score_many([chosen, rejected], followups)
                seconds[dtype] += time.perf_counter() - start
        except ConversationError:  # e.g. longer than the model's context
            skipped += 1
            continue
        for dtype, results in both.items():
            scored[dtype].append(tuple((r.flr, _flat(r, texts)) for r in results))  # type: ignore[arg-type]
        sources[source] = sources.get(source, 0) + 1
    agreement = decision_agreement(scored["float32"], scored["bfloat16"])
    described = ", ".join(f"{n} {name}" for name, n in sources.items())
    print(f"bf16 against fp32 on {agreement.pairs} held-out pairs ({described}"
          f"{f'; {skipped} skipped' if skipped else ''}; scoring took {seconds['float32']:.0f} s in fp32, "
          f"{seconds['bfloat16']:.0f} s in bf16):")
    print(f"  per-follow-up |difference|: max {agreement.max_followup_difference:.4f}, "
          f"mean {agreement.mean_followup_difference:.4f}")
    print(f"  preferred reply changed on {agreement.changed} of {agreement.pairs} pairs "
          f"({agreement.changed_share:.1%})")
    print(f"  overall FLR (mean over {2 * agreement.pairs} replies): fp32 {agreement.reference_flr:.4f}, "
          f"bf16 {agreement.other_flr:.4f}, difference {agreement.flr_difference:+.4f}")
    return {**asdict(agreement), "changed_share": agreement.changed_share, "sources": sources,
            "skipped": skipped, "seconds": seconds}


def engine_arithmetic(scorer: FLRScorer, requests: Sequence[Request], prefix: int) -> tuple[int, int]:
    """Matrix-multiply FLOPs of the linear layers the engine runs for one reply (attention
    excluded, as in the floor): the conversation and each distinct follow-up token prefix once
    through the body, one output-head row per distinct hidden state. Also returns the number
    of distinct prefixes."""
    model = scorer.loaded.model
    head = model.get_output_embeddings().weight
    embed = model.get_input_embeddings().weight
    body = model.num_parameters() - embed.numel() - (0 if head is embed else head.numel())
    distinct = len(SuffixTrie([r.ids[prefix:r.needed_length] for r in requests]))
    return 2 * body * (prefix + distinct) + 2 * head.numel() * (distinct + 1), distinct


def mt_bench_conversation(folder: Path, question_id: int, utterances: int) -> Conversation:
    """MT-Bench question turns interleaved with GPT-4's reference answers."""
    questions = _by_id(folder / "question.jsonl")
    answers = _by_id(folder / "reference_answer_gpt-4.jsonl")
    turns = questions[question_id]["turns"]
    replies = answers[question_id]["choices"][0]["turns"]
    interleaved = [text for pair in zip(turns, replies) for text in pair]
    return from_utterances(interleaved[:utterances])


def lm_eval_model(loaded: LoadedModel, batch_size: int) -> Any:
    """lm-evaluation-harness's HFLM around the already loaded model (nothing downloaded)."""
    from lm_eval.models.huggingface import HFLM

    return HFLM(pretrained=loaded.model, tokenizer=loaded.tokenizer, batch_size=batch_size,
                max_length=loaded.max_context, device=str(loaded.device))


def random_model(loaded: LoadedModel, config_path: Path, config: ScoringConfig) -> LoadedModel:
    """A random-weight model of the architecture in `config_path`, with `loaded`'s tokenizer."""
    from transformers import AutoConfig, AutoModelForCausalLM

    model_config = AutoConfig.from_pretrained(str(config_path))
    model_config.vocab_size = max(model_config.vocab_size, len(loaded.tokenizer))
    device = resolve_device(config.device)
    dtype = resolve_dtype(config.dtype, device)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(model_config, dtype=dtype)
    model.eval()
    return LoadedModel(model, loaded.tokenizer, device, dtype, f"random:{config_path.name}",
                       f"random {config_path.name}")


def matmul_throughput(loaded: LoadedModel, repeats: int = 10) -> float:
    """Best FLOP/s of torch.matmul on this model's projection shapes (rows: a typical pass)."""
    config = loaded.model.config
    hidden = config.hidden_size
    inner = getattr(config, "intermediate_size", 4 * hidden)
    rows = 1024 if loaded.device.type == "cpu" else 8192
    best = 0.0
    for k, n in ((hidden, hidden), (hidden, inner), (inner, hidden)):
        a = torch.randn(rows, k, device=loaded.device, dtype=loaded.dtype)
        b = torch.randn(k, n, device=loaded.device, dtype=loaded.dtype)
        for _ in range(3):
            torch.matmul(a, b)
        for _ in range(repeats):
            _sync(loaded)
            start = time.perf_counter()
            torch.matmul(a, b)
            _sync(loaded)
            best = max(best, 2 * rows * k * n / (time.perf_counter() - start))
    return best


class _attention:
    """Run the baselines on the model's standard attention (sdpa), then switch back."""

    def __init__(self, loaded: LoadedModel, name: str) -> None:
        self.model = loaded.model
        self.name = name

    def __enter__(self) -> None:
        self.previous = self.model.config._attn_implementation
        self.model.set_attn_implementation(self.name)

    def __exit__(self, *exc: Any) -> None:
        self.model.set_attn_implementation(self.previous)


def _timed(fn: Callable[[], Any], repeats: int, loaded: LoadedModel) -> list[float]:
    times = []
    for _ in range(max(1, repeats)):
        _sync(loaded)
        start = time.perf_counter()
        with torch.inference_mode():
            fn()
        _sync(loaded)
        times.append(time.perf_counter() - start)
    return times


def _sync(loaded: LoadedModel) -> None:
    if loaded.device.type == "cuda":
        torch.cuda.synchronize(loaded.device)


def _flat(result: Any, texts: list[str]) -> list[float]:
    values: dict[str, float] = {}
    for category in result.categories:
        values.update(zip(category.positive_texts, category.positive))
        values.update(zip(category.negative_texts, category.negative))
    return [values[t] for t in texts]


def _common_prefix(requests: Sequence[Request]) -> int:
    return min(r.positions[0] + 1 for r in requests)


def _by_id(path: Path) -> dict[int, Any]:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return {row["question_id"]: row for row in rows}


def _load(values: tuple[float, float, float]) -> str:
    return " ".join(f"{v:.2f}" for v in values) + f" (1, 5, 15 min; {os.cpu_count()} CPUs)"


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _ratio(base: float | None, engine: float) -> str:
    return "-" if base is None else f"{base / engine:.1f}x"


if __name__ == "__main__":
    raise SystemExit(main())
