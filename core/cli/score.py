"""`flr score`: follow-up rewards for every conversation in a JSON/JSONL/CSV file.

Input items are utterance lists or objects with a `conversation` field (other fields are kept).
Every item is parsed before the model loads, so a bad item is reported (with its number and
line) without wasting a model load; output is written item by item, in input order, to a
temporary file that replaces `--output` only when every item is scored.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

from core.cli.flags import add_ray_arguments, add_scoring_arguments, cluster_from_args, config_from_args
from core.engine.conversation import Conversation, parse_conversation
from core.errors import ConversationError, InputError
from core.engine.followups import load_followups
from core.records import read_records
from core.textfiles import atomic_output, check_writable

log = logging.getLogger(__name__)
PROGRESS_MIN_ITEMS = 5  # a progress bar is noise for a handful of items


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser("score", help="score conversations against follow-up sets",
                                   description=__doc__)
    parser.add_argument("--input", required=True, help="JSON, JSONL or CSV file of conversations")
    parser.add_argument("--output", required=True, help="JSONL file to write")
    add_scoring_arguments(parser)
    add_ray_arguments(parser)
    parser.add_argument("--explain", action="store_true",
                        help="add per follow-up the value of each token, the follow-ups that "
                             "moved the score most first")
    parser.set_defaults(func=run)


def load_items(path: str | Path) -> list[tuple[dict[str, Any], Conversation]]:
    """(output record stub, conversation) per input item; raises naming the bad item."""
    out = []
    for number, record in enumerate(read_records(path, InputError), start=1):
        item = record.value
        where = f"{path}, item {number}"
        if isinstance(item, dict):
            if "conversation" not in item:
                raise ConversationError(f"{where}: object has no 'conversation' field "
                                        "(expected a list of utterances or messages)")
            record = dict(item)
        else:
            record = {"conversation": item}
        out.append((record, parse_conversation(record["conversation"], where)))
    return out


def run(args: argparse.Namespace) -> int:
    from core.engine.scorer import load_scorer

    config = config_from_args(args)
    cluster = cluster_from_args(args)
    followups = load_followups(args.followups)
    items = load_items(args.input)
    check_writable(Path(args.output), InputError)  # before the model loads, not after scoring
    if cluster is not None and getattr(args, "explain", False):
        raise InputError("--explain reads token values in this process; run it without --ray")
    if cluster is not None:
        return _run_on_cluster(args, cluster, config, followups, items)
    scorer = load_scorer(config)
    bar = None
    if len(items) >= PROGRESS_MIN_ITEMS:
        from tqdm import tqdm

        bar = tqdm(total=len(items), desc="scoring", unit="conv", file=sys.stderr)
    output = Path(args.output)
    # written beside the output and renamed into place at the end: a failed run leaves an
    # existing output as it was
    failed = []
    with atomic_output(output, InputError) as fh:
        for number, (record, conversation) in enumerate(items, start=1):
            for warning in conversation.warnings:
                log.warning(warning)
            try:
                result = scorer.score(conversation, followups)
            except ConversationError as err:  # e.g. the model's template refuses it: skip the row
                failed.append(f"item {number}: {err}")
                if len(failed) == len(items):  # nothing scored: keep an existing output as it was
                    raise InputError(err if len(items) == 1 else
                                     f"none of the {len(items)} conversations could be scored; "
                                     f"{'; '.join(failed[:3])}") from err
                record["error"] = str(err)
                fh.write(json.dumps(record, ensure_ascii=False) + "\n")
                continue
            record.update(result.to_record())
            if getattr(args, "explain", False):
                from core.engine.explain import explain

                record["explanation"] = explain(scorer, conversation, followups).to_record()
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")
            fh.flush()
            if bar is not None:
                bar.update(1)
    if bar is not None:
        bar.close()
    print(f"wrote {len(items) - len(failed)} scored conversation(s) to {output}", file=sys.stderr)
    if failed:
        print(f"error: {len(failed)} conversation(s) could not be scored (their records carry an "
              f"'error' field): {'; '.join(failed[:3])}", file=sys.stderr)
        return 2
    return 0


def _run_on_cluster(args: argparse.Namespace, cluster: Any, config: Any, followups: Any,
                    items: list[tuple[dict[str, Any], Conversation]]) -> int:
    """`--ray`: score on Ray workers through the score cache (`core.distributed.cached`), so a
    killed run resumes and an identical rerun starts no worker; output in input order."""
    from core.distributed.cached import cached_scores
    from core.distributed.scoring import ClusterScorer
    from core.distributed.session import ClusterSession
    from core.distributed.workers import scorer_factory
    from core.evaluation.score_cache import default_cache_path

    for _, conversation in items:
        for warning in conversation.warnings:
            log.warning(warning)
    bar = None
    if len(items) >= PROGRESS_MIN_ITEMS:
        from tqdm import tqdm

        bar = tqdm(total=len(items), desc="scoring", unit="conv", file=sys.stderr)

    def progress(done: int, _total: int) -> None:
        if bar is not None:
            bar.n = done
            bar.refresh()

    with ClusterSession(cluster) as session:
        results, stats = cached_scores([c for _, c in items], followups, config, default_cache_path(),
                                       lambda: ClusterScorer(session, config, scorer_factory(config)),
                                       progress)
    if bar is not None:
        bar.close()
    output = Path(args.output)
    failed = []
    with atomic_output(output, InputError) as fh:
        for number, ((record, _), result) in enumerate(zip(items, results), start=1):
            if isinstance(result, str):
                failed.append(f"item {number}: {result}")
                record["error"] = result
            else:
                record.update(result.to_record())
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")
    print(f"wrote {len(items)} scored conversation(s) to {output} ({stats['scored']} scored on "
          f"{cluster.workers} Ray worker(s), {stats['from_cache']} from the score cache)", file=sys.stderr)
    if failed:
        print(f"error: {len(failed)} conversation(s) could not be scored (their records carry an "
              f"'error' field): {'; '.join(failed[:3])}", file=sys.stderr)
        return 2
    return 0
