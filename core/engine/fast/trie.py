"""Follow-up suffixes as a token trie: a token that several follow-ups share is computed once.

Many follow-ups begin alike ("That's exactly what I needed", "That's not what I asked"): after
the same conversation, the same leading tokens have the same hidden states, so they need to go
through the model only once (the 120 bundled follow-ups have 884 suffix tokens but 736 distinct
prefixes of them). The trie's nodes are those distinct prefixes; a node attends to the
conversation and to its ancestors, as each follow-up's tokens would attend to their
predecessors. This is exact: the hidden state of a node is the hidden state of that token in
every follow-up through it.

`SuffixTrie.units(width)` cuts the trie into pieces that fit a batch row of `width` slots: a
subtree that fits goes whole; a larger one is split among its children, and each piece carries
its own copy of the path from the conversation to it, so every node's ancestors are in its
row. Children too small to go alone share a piece (`core.engine.fast.packing`'s first-fit decreasing) and
so share one copy of that path. Pure Python; `core.engine.fast.packing` then packs the pieces into rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Sequence

from core.engine.fast.packing import Segment, pack_rows

ROOT = -1  # the conversation's last token: the parent of every first suffix token


@dataclass(frozen=True)
class Piece:
    """Trie nodes laid out for one stretch of a batch row.

    Slot k holds node `nodes[k]` (token `tokens[k]`, `depths[k]` tokens after the conversation)
    and attends to the slots on its chain of `parents` (a slot of this piece, or `ROOT`).
    """

    nodes: tuple[int, ...]
    tokens: tuple[int, ...]
    depths: tuple[int, ...]
    parents: tuple[int, ...]

    def __len__(self) -> int:
        return len(self.nodes)


class SuffixTrie:
    """The distinct prefixes of a set of token sequences (the follow-ups' suffixes)."""

    def __init__(self, suffixes: Sequence[Sequence[int]]) -> None:
        self.token: list[int] = []
        self.parent: list[int] = []
        self.depth: list[int] = []
        self.children: dict[int, list[int]] = {ROOT: []}
        index: dict[tuple[int, int], int] = {}
        self.paths: list[tuple[int, ...]] = []  # node ids along each suffix, in order
        for suffix in suffixes:
            node, path = ROOT, []
            for token in suffix:
                child = index.get((node, token))
                if child is None:
                    child = len(self.token)
                    index[(node, token)] = child
                    self.token.append(token)
                    self.parent.append(node)
                    self.depth.append(0 if node == ROOT else self.depth[node] + 1)
                    self.children[child] = []
                    self.children[node].append(child)
                node = child
                path.append(node)
            self.paths.append(tuple(path))
        self.deepest = max((len(p) for p in self.paths), default=0)  # the longest suffix
        self.size = [1] * len(self.token)  # nodes in each subtree (children come after parents)
        for node in range(len(self.token) - 1, -1, -1):
            if self.parent[node] != ROOT:
                self.size[self.parent[node]] += self.size[node]

    def __len__(self) -> int:
        return len(self.token)

    def units(self, width: int) -> list[Piece]:
        """Pieces of at most `width` slots that together hold every node, each with its
        ancestors. `width` must be at least the deepest path."""
        if self.deepest > width:
            raise ValueError(f"a follow-up of {self.deepest} tokens cannot go in a row of {width}")
        pieces: list[Piece] = []
        for child in self.children[ROOT]:  # first tokens: whole subtrees pack into rows later
            pieces.extend(self._split(child, (), width))
        return pieces

    def _split(self, node: int, path: tuple[int, ...], width: int) -> Iterator[Piece]:
        if len(path) + self.size[node] <= width:
            yield self._layout(path, [node])
            return
        inner = path + (node,)
        small: list[int] = []
        for child in self.children[node]:
            if len(inner) + self.size[child] > width:
                yield from self._split(child, inner, width)
            else:
                small.append(child)
        # The small children share pieces (first-fit decreasing into the room the path leaves).
        for row in pack_rows([Segment(0, child, self.size[child]) for child in small], width - len(inner)):
            yield self._layout(inner, [segment.key for segment, _ in row.segments])

    def _layout(self, path: tuple[int, ...], roots: Sequence[int]) -> Piece:
        """The path (each node's parent the slot before it), then each subtree depth first."""
        nodes = list(path)
        slot = {n: k for k, n in enumerate(nodes)}
        stack = list(reversed(roots))
        while stack:
            node = stack.pop()
            slot[node] = len(nodes)
            nodes.append(node)
            stack.extend(reversed(self.children[node]))
        parents = tuple(ROOT if self.parent[n] == ROOT else slot[self.parent[n]] for n in nodes)
        return Piece(tuple(nodes), tuple(self.token[n] for n in nodes),
                     tuple(self.depth[n] for n in nodes), parents)
