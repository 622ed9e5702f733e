"""Preference mining: sample K replies per prompt from a policy model and score each with FLR.

Every sample is kept with its overall FLR and per-category rewards; `core.mining.preferences`
turns the results into DPO / KTO / SFT data. Results are appended to a JSONL cache in the
output folder after each batch of prompts, so a killed run picks up where it stopped.

The mined data live here (`Sample`, `PromptSamples`, and the `PreferencePair` / `KTOExample`
that `core.mining.preferences` selects and `core.mining.llamafactory` writes). The policy that
writes the replies, and `MiningConfig`, is `core.mining.policy`. An empty reply (the model stopped at once) is kept with no reward and never exported.

"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Mapping, Sequence

from core.engine.followups import FollowupSet
from core.mining.policy import Generation, MiningConfig, Policy
from core.mining.prompts import MiningPrompt, prompt_from_record

if TYPE_CHECKING:
    from core.engine.scorer import Scorer


log = logging.getLogger(__name__)


ProgressCallback = Callable[[int, int], None]  # (replies done, replies total)
# (prompts, batches of prompt indices, follow-ups, config) -> each batch's results as it finishes
BatchMiner = Callable[[Sequence[MiningPrompt], list[list[int]], FollowupSet, "MiningConfig"],
                      Iterable[list["PromptSamples"]]]


CACHE_FOLDER = "cache"


EMPTY_REPLY = "empty reply"


@dataclass(frozen=True)
class Sample:
    """One sampled reply and its FLR rewards (None when it could not be scored)."""

    index: int  # 0..K-1 within its prompt
    response: str
    flr: float | None
    rewards: Mapping[str, float] = field(default_factory=dict)  # per follow-up category
    finished: bool = True
    note: str | None = None  # why there is no reward

    def to_record(self) -> dict[str, Any]:
        record: dict[str, Any] = {"sample": self.index, "response": self.response, "flr": self.flr,
                                  "rewards": dict(self.rewards), "finished": self.finished}
        if self.note:
            record["note"] = self.note
        return record

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> "Sample":
        return cls(int(record["sample"]), record["response"], record["flr"],
                   dict(record.get("rewards", {})), bool(record.get("finished", True)),
                   record.get("note"))


@dataclass(frozen=True)
class PromptSamples:
    """All samples of one prompt, in sample order."""

    index: int  # position in the prompt file; seeds derive from it
    prompt: MiningPrompt
    samples: tuple[Sample, ...]

    @property
    def scored(self) -> list[Sample]:
        return [s for s in self.samples if s.flr is not None]

    def best(self) -> Sample | None:
        """Highest FLR; ties go to the earliest sample."""
        scored = self.scored
        return max(scored, key=lambda s: (s.flr, -s.index)) if scored else None

    def worst(self) -> Sample | None:
        """Lowest FLR; ties go to the earliest sample."""
        scored = self.scored
        return min(scored, key=lambda s: (s.flr, s.index)) if scored else None

    def to_record(self) -> dict[str, Any]:
        return {"index": self.index, "prompt": self.prompt.to_record(),
                "samples": [s.to_record() for s in self.samples]}

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> "PromptSamples":
        prompt = prompt_from_record(record["prompt"], "cache record")
        return cls(int(record["index"]), prompt,
                   tuple(Sample.from_record(s) for s in record["samples"]))


@dataclass(frozen=True)
class PreferencePair:
    """A prompt's best and worst scored samples: one DPO record."""

    prompt_index: int
    prompt: MiningPrompt
    chosen: Sample
    rejected: Sample

    @property
    def margin(self) -> float:
        assert self.chosen.flr is not None and self.rejected.flr is not None
        return self.chosen.flr - self.rejected.flr


@dataclass(frozen=True)
class KTOExample:
    """One scored sample marked desirable or not: one KTO record."""

    prompt_index: int
    prompt: MiningPrompt
    sample: Sample
    desirable: bool


def run_key(policy: Policy, scorer: "Scorer", followups: FollowupSet,
            config: MiningConfig) -> dict[str, Any]:
    """Everything that decides the samples and their rewards."""
    return {"policy": policy.identity, "scorer": scorer.identity,
            "followups": followups.fingerprint(), **config.sampling_key()}


def key_digest(key: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]


class SampleCache:
    """Append-only JSONL of finished prompts for one run key, in `DIR/cache/`."""

    def __init__(self, output_dir: str | Path, key: Mapping[str, Any]) -> None:
        digest = key_digest(key)
        folder = Path(output_dir) / CACHE_FOLDER
        self.path = folder / f"samples-{digest}.jsonl"
        self.key_path = folder / f"run-{digest}.json"
        self.key = dict(key)

    def load(self, prompts: Sequence[MiningPrompt]) -> dict[int, PromptSamples]:
        """Cached results whose prompt still matches the prompt at that position."""
        if not self.path.is_file():
            return {}
        done: dict[int, PromptSamples] = {}
        with self.path.open(encoding="utf-8") as handle:
            for lineno, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    result = PromptSamples.from_record(json.loads(line))
                except (json.JSONDecodeError, KeyError, TypeError, ValueError):
                    # A run killed mid-write leaves a partial line; that prompt is redone.
                    log.warning("%s, line %d: unreadable cache record, the prompt will be sampled again",
                                self.path, lineno)
                    continue
                if result.index < len(prompts) and prompts[result.index] == result.prompt:
                    done[result.index] = result
        return done

    def append(self, results: Iterable[PromptSamples]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self.key_path.exists():
            self.key_path.write_text(json.dumps(self.key, indent=2), encoding="utf-8")
        needs_newline = self.path.is_file() and self.path.stat().st_size > 0 and not \
            self.path.read_bytes().endswith(b"\n")
        with self.path.open("a", encoding="utf-8") as handle:
            if needs_newline:
                handle.write("\n")
            for result in results:
                handle.write(json.dumps(result.to_record(), ensure_ascii=False) + "\n")
            handle.flush()


def mine(prompts: Sequence[MiningPrompt], policy: Policy, scorer: "Scorer", followups: FollowupSet,
         config: MiningConfig, output_dir: str | Path | None = None,
         progress: ProgressCallback | None = None,
         batches: BatchMiner | None = None) -> list[PromptSamples]:
    """Sample, score and keep every reply; with `output_dir`, cache as it goes and resume.

    `progress(done, total)` counts replies (prompts x samples), those from the cache included;
    it advances as the scorer finishes each reply. `batches`, when given, mines the batches
    elsewhere (`core.distributed.mining`: on Ray workers) and yields them as they finish; then
    `policy` and `scorer` are used only for their identities (the resume cache's key).
    """
    cache = SampleCache(output_dir, run_key(policy, scorer, followups, config)) if output_dir else None
    done = cache.load(prompts) if cache else {}
    if done:
        log.info("resuming: %d of %d prompts already mined", len(done), len(prompts))
    k = config.samples
    total = len(prompts) * k
    if progress:
        progress(len(done) * k, total)
    todo = [i for i in range(len(prompts)) if i not in done]
    groups = [todo[start:start + config.batch_size] for start in range(0, len(todo), config.batch_size)]
    if batches is not None:
        finished = batches(prompts, groups, followups, config)
    else:
        def local() -> Iterator[list[PromptSamples]]:
            for batch in groups:
                base = len(done) * k
                scoring_progress = (lambda n, _total: progress(base + n, total)) if progress else None
                yield mine_batch([prompts[i] for i in batch], batch, policy, scorer, followups, config,
                                 scoring_progress)
        finished = local()
    for results in finished:
        if cache:
            cache.append(results)
        for result in results:
            done[result.index] = result
        if progress:
            progress(len(done) * k, total)
    return [done[i] for i in range(len(prompts))]


def mine_batch(prompts: Sequence[MiningPrompt], indices: Sequence[int], policy: Policy, scorer: "Scorer",
               followups: FollowupSet, config: MiningConfig,
               progress: ProgressCallback | None = None) -> list[PromptSamples]:
    """Sample K replies for each prompt of one batch and score them; `indices` seed the samples."""
    generations = policy.generate(prompts, indices, config)
    if len(generations) != len(prompts) or any(len(g) != config.samples for g in generations):
        raise RuntimeError("the policy returned the wrong number of generations")
    return score_generations(prompts, indices, generations, scorer, followups, progress)


def score_generations(prompts: Sequence[MiningPrompt], indices: Sequence[int],
                      generations: Sequence[Sequence[Generation]], scorer: "Scorer",
                      followups: FollowupSet,
                      progress: ProgressCallback | None = None) -> list[PromptSamples]:
    """Score every non-empty generation in one `score_many` call."""
    conversations, slots = [], []
    for p, gens in enumerate(generations):
        for s, gen in enumerate(gens):
            if gen.text.strip():
                conversations.append(prompts[p].with_reply(gen.text))
                slots.append((p, s))
    scores = scorer.score_many(conversations, followups, progress=progress) if conversations else []
    by_slot = dict(zip(slots, scores))
    results = []
    for p, gens in enumerate(generations):
        samples = []
        for s, gen in enumerate(gens):
            score = by_slot.get((p, s))
            if score is None:
                samples.append(Sample(s, gen.text, None, {}, gen.finished, EMPTY_REPLY))
            else:
                samples.append(Sample(s, gen.text, score.flr, {c.name: c.flr for c in score.categories},
                                      gen.finished))
        results.append(PromptSamples(indices[p], prompts[p], tuple(samples)))
    return results
