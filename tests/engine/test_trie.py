"""The follow-up token trie and its pieces, worked out by hand."""

from __future__ import annotations

import pytest

from core.engine.fast.trie import ROOT, SuffixTrie

# a b c / a b d / a e / f / a b (a prefix of the first two)
SUFFIXES = [(1, 2, 3), (1, 2, 4), (1, 5), (6,), (1, 2)]


def test_shared_leading_tokens_become_one_node():
    trie = SuffixTrie(SUFFIXES)
    assert len(trie) == 6  # a, a>b, a>b>c, a>b>d, a>e, f
    assert trie.paths == [(0, 1, 2), (0, 1, 3), (0, 4), (5,), (0, 1)]
    assert trie.token == [1, 2, 3, 4, 5, 6]
    assert trie.parent == [ROOT, 0, 1, 1, 0, ROOT]
    assert trie.depth == [0, 1, 2, 2, 1, 0]
    assert trie.size == [5, 3, 1, 1, 1, 1]


def test_whole_subtrees_when_they_fit():
    pieces = SuffixTrie(SUFFIXES).units(width=8)
    assert [p.nodes for p in pieces] == [(0, 1, 2, 3, 4), (5,)]
    first = pieces[0]
    assert first.tokens == (1, 2, 3, 4, 5)
    assert first.depths == (0, 1, 2, 2, 1)
    assert first.parents == (ROOT, 0, 1, 1, 0)  # slots of the parents inside the piece


def test_a_subtree_too_wide_is_split_with_its_path_copied():
    # width 3: subtree of `a` (5 nodes) does not fit. Children of a: b (size 3 with path a -> 4,
    # too big, split again) and e (size 1, fits with the path a).
    pieces = SuffixTrie(SUFFIXES).units(width=3)
    nodes = [p.nodes for p in pieces]
    assert nodes == [(0, 1, 2), (0, 1, 3), (0, 4), (5,)]
    assert pieces[1].parents == (ROOT, 0, 1)
    assert all(len(p) <= 3 for p in pieces)
    covered = {n for p in pieces for n in p.nodes}
    assert covered == set(range(6))


def test_small_children_share_one_copy_of_the_path():
    # `a` has ten one-token children: at width 6 they go five to a piece, each piece with `a` once.
    suffixes = [(1, 10 + k) for k in range(10)]
    pieces = SuffixTrie(suffixes).units(width=6)
    assert [len(p) for p in pieces] == [6, 6]
    assert all(p.nodes[0] == 0 and p.parents == (ROOT, 0, 0, 0, 0, 0) for p in pieces)


def test_a_path_longer_than_the_row_is_refused():
    with pytest.raises(ValueError, match="4 tokens"):
        SuffixTrie([(1, 2, 3, 4)]).units(width=3)
