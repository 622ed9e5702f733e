"""The FLR paper's accept/reject files: entry i of `..._accept_<category>.jsonl` pairs with
entry i of `..._reject_<category>.jsonl`.

Entries that carry precomputed `positive` / `negative` lists are evaluated without a model, and
files of one benchmark that differ only in their last (category) word are combined entry by
entry, as the paper's scripts do. Paper-layout files without precomputed lists are scored with
the whole follow-up set the caller chooses; their file-name category is not used.
"""

from __future__ import annotations

from collections import OrderedDict

from core.engine.conversation import Conversation
from core.errors import BenchmarkFormatError
from core.evaluation.benchmark import Benchmark, frame_row, make_frame
from core.evaluation.entries import (
    CONVERSATION_FIELDS,
    PROMPT_FIELDS,
    RESPONSE_FIELDS,
    SourceFile,
    category_word,
    conversation_of,
    first_key,
    has_precomputed,
    name_from_words,
    pair_key,
    precomputed_lists,
)
from core.records import Record
from core.names import CHOSEN, PAIRWISE, REJECTED


def category_groups(files: list[SourceFile]) -> "OrderedDict[tuple, list[SourceFile]]":
    """Precomputed files that differ only in the last (category) word belong together, when
    they hold the same conversations entry by entry; files whose conversations differ at the
    same index are subsets of a benchmark, each evaluated on its own."""
    groups: OrderedDict[tuple, list[SourceFile]] = OrderedDict()
    for f in files:
        key = pair_key(f.path)
        if f.precomputed and len(key) > 1 and key[-1] != "*":
            key = (str(f.path.parent),) + key[:-1] + ("<category>",)
        else:  # a file of its own (full path first, so same-named files never merge)
            key = (str(f.path),) + key
        groups.setdefault(key, []).append(f)
    out: OrderedDict[tuple, list[SourceFile]] = OrderedDict()
    for key, group in groups.items():
        if len(group) > 1 and not same_entries(group):
            for f in group:
                out[(str(f.path),) + pair_key(f.path)] = [f]
        else:
            out[key] = group
    return out


def same_entries(files: list[SourceFile]) -> bool:
    """Whether files hold the same rows (entry i the same conversation in each): equally many
    entries and, where entries carry a conversation, equal ones. Files without conversations
    can only be checked by length."""
    if len({len(f.records) for f in files}) > 1:
        return False
    for entries in zip(*(f.records for f in files)):
        seen = [_conversation_field(rec.value) for rec in entries]
        known = [c for c in seen if c is not None]
        if any(c != known[0] for c in known[1:]):
            return False
    return True


def _conversation_field(data: dict) -> object:
    key = first_key(data, CONVERSATION_FIELDS)
    if key is not None:
        return data[key]
    prompt, response = first_key(data, PROMPT_FIELDS), first_key(data, RESPONSE_FIELDS)
    if prompt and response:
        return (data[prompt], data[response])
    return None


def _entries_by_category(files: list[SourceFile], what: str) -> tuple[list[str], list[list[Record]]]:
    """Category names and, per category, the entries; all categories must be equally long."""
    categories = [category_word(f.path) if f.precomputed else "" for f in files]
    dup = {c for c in categories if categories.count(c) > 1}
    if dup and any(f.precomputed for f in files):
        raise BenchmarkFormatError(
            f"{what}: several files for category {sorted(dup)[0]!r}: "
            f"{', '.join(f.path.name for f in files)}")
    lengths = {f.path.name: len(f.records) for f in files}
    if len(set(lengths.values())) > 1:
        raise BenchmarkFormatError(
            f"{what}: category files have different numbers of entries ("
            + ", ".join(f"{n}: {c}" for n, c in lengths.items())
            + "); entry i of each file must be the same conversation")
    return categories, [f.records for f in files]


def combined_entries(files: list[SourceFile], what: str, warnings: list[str]) -> list[tuple[Record, dict | None]]:
    """Per entry index: the first file's record and the precomputed values of every category."""
    categories, per_file = _entries_by_category(files, what)
    precomputed = files[0].precomputed
    out = []
    mismatches = 0
    for i in range(len(per_file[0])):
        base = per_file[0][i]
        values: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] | None = None
        if precomputed:
            values = {}
            for cat, recs in zip(categories, per_file):
                lists = precomputed_lists(recs[i].value, recs[i].where)
                if lists is None:
                    raise BenchmarkFormatError(
                        f"{recs[i].where}: no 'positive' / 'negative' lists while entry 0 of the "
                        "file has them; every entry of a precomputed file needs both")
                values[cat] = lists
                conv = recs[i].value.get("conversation")
                if conv is not None and base.value.get("conversation") not in (None, conv):
                    mismatches += 1
        else:
            for recs in per_file:
                if has_precomputed(recs[i].value):
                    raise BenchmarkFormatError(
                        f"{recs[i].where}: has 'positive' / 'negative' lists but entry 0 of the "
                        "file does not; give all entries precomputed values or none")
        out.append((base, values))
    if mismatches:
        warnings.append(f"{what}: {mismatches} entries differ in their conversation between "
                        "category files; they were combined by position as the paper does")
    return out


def paper_benchmarks(files: list[SourceFile]) -> list[Benchmark]:
    by_key: OrderedDict[tuple, dict[str, list[SourceFile]]] = OrderedDict()
    for f in files:
        key = (str(f.path.parent),) + pair_key(f.path)
        by_key.setdefault(key, {CHOSEN: [], REJECTED: []})[f.side or CHOSEN].append(f)
    # Precomputed category files of one benchmark share the key without their last word,
    # unless their conversations differ at the same index: then they are separate subsets.
    candidates: OrderedDict[tuple, list[tuple[tuple, dict[str, list[SourceFile]]]]] = OrderedDict()
    for key, sides in by_key.items():
        precomputed = any(f.precomputed for fs in sides.values() for f in fs)
        categorised = precomputed and len(key) > 2 and key[-1] != "*"
        group = key[:-1] + ("<category>",) if categorised else key
        candidates.setdefault(group, []).append((key, sides))
    merged: OrderedDict[tuple, dict[str, list[SourceFile]]] = OrderedDict()
    subsets: set[tuple] = set()
    for group, members in candidates.items():
        files = {side: [f for _, sides in members for f in sides[side]] for side in (CHOSEN, REJECTED)}
        if len(members) > 1 and not (same_entries(files[CHOSEN]) and same_entries(files[REJECTED])):
            for key, sides in members:
                merged[key] = sides
                subsets.add(key)
        else:
            merged[group] = files
    benchmarks = []
    for key, sides in merged.items():
        accept, reject = sides[CHOSEN], sides[REJECTED]
        if not accept or not reject:
            have = (accept or reject)[0]
            need = "reject" if accept else "accept"
            raise BenchmarkFormatError(
                f"{have.path.name}: no matching {need} file; the paper's layout pairs "
                f"'..._accept_<category>' with '..._reject_<category>' (entry i with entry i)")
        precomputed = {f.precomputed for f in accept + reject}
        if len(precomputed) > 1:
            raise BenchmarkFormatError(
                "files of one benchmark mix precomputed and unscored entries: "
                + ", ".join(f"{f.path.name} ({'precomputed' if f.precomputed else 'conversation only'})"
                            for f in accept + reject))
        is_pre = precomputed.pop()
        accept.sort(key=lambda f: category_word(f.path))
        reject.sort(key=lambda f: category_word(f.path))
        a_cats = [category_word(f.path) for f in accept] if is_pre else []
        r_cats = [category_word(f.path) for f in reject] if is_pre else []
        if a_cats != r_cats:
            raise BenchmarkFormatError(
                f"accept and reject files cover different categories (accept: {', '.join(a_cats)}; "
                f"reject: {', '.join(r_cats)}); give both files of every category")
        for fa, fr in zip(accept, reject):
            if len(fa.records) != len(fr.records):
                raise BenchmarkFormatError(
                    f"{fa.path.name} has {len(fa.records)} entries but {fr.path.name} has "
                    f"{len(fr.records)}; entry i of the accept file pairs with entry i of the "
                    "reject file, so both need the same number")
        name_words = [w for w in key[1:] if w != "<category>"]
        name = name_from_words(name_words, accept[0].path)
        warnings: list[str] = []
        chosen = combined_entries(accept, f"{name} (accept)", warnings)
        rejected = combined_entries(reject, f"{name} (reject)", warnings)
        rows = []
        for i, ((ra, va), (rr, vr)) in enumerate(zip(chosen, rejected)):
            _same_lengths(ra, va, rr, vr)
            for side, rec, values in ((CHOSEN, ra, va), (REJECTED, rr, vr)):
                conv, err = paper_conversation(rec, values is not None)
                rows.append(frame_row(i, rec.where, conv, err, side=side, precomputed=values))
        notes = [f"{len(chosen)} accept/reject pairs, entry i with entry i"]
        if key in subsets:
            notes.append("a subset: files named like its category files hold other conversations "
                         "at the same entries, so they are evaluated apart, not averaged")
        benchmarks.append(Benchmark(
            name, PAIRWISE, tuple(f.path for f in accept + reject), make_frame(rows), is_pre, "paper",
            tuple(a_cats), notes=notes, warnings=warnings))
    return benchmarks


def _same_lengths(ra: Record, va: dict | None, rr: Record, vr: dict | None) -> None:
    """The two sides of a pair must hold one value per follow-up of the same set; different
    lengths mean different follow-up sets, and their means would not be comparable."""
    if va is None or vr is None:
        return
    for cat, (a_pos, a_neg) in va.items():
        r_pos, r_neg = vr.get(cat, (a_pos, a_neg))
        if (len(a_pos), len(a_neg)) != (len(r_pos), len(r_neg)):
            label = f" (category {cat})" if cat else ""
            raise BenchmarkFormatError(
                f"{ra.where} has {len(a_pos)} positive / {len(a_neg)} negative values but its pair "
                f"{rr.where} has {len(r_pos)} / {len(r_neg)}{label}; both sides of a pair must be "
                "scored with the same follow-up set")


def paper_conversation(rec: Record, precomputed: bool) -> tuple[Conversation | None, str | None]:
    """Precomputed entries may lack a conversation (only the length baseline needs it)."""
    if precomputed and first_key(rec.value, CONVERSATION_FIELDS) is None:
        return None, None
    conv, err = conversation_of(rec.value, rec.where)
    if precomputed and err is not None:
        return None, None  # values are given; the conversation only feeds the length baseline
    return conv, err
