"""A small least-recently-used cache for things kept per frame size (buffers, pools,
resamplers, glyph atlases): a few cameras reuse theirs, a folder of images of every size
keeps only the last few instead of one per size it ever saw."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

SIZES_KEPT = 4  # frame sizes a stage keeps buffers for: a few cameras of different sizes


class Lru(Generic[K, V]):
    """At most ``limit`` values; the least recently used goes first."""

    def __init__(self, limit: int = SIZES_KEPT) -> None:
        self.limit = max(1, limit)
        self._items: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K, make: Callable[[], V]) -> V:
        """The value for ``key``, made (and the oldest evicted) if it is not kept."""
        value = self._items.get(key)
        if value is None:
            value = make()
            self._items[key] = value
            while len(self._items) > self.limit:
                self._items.popitem(last=False)
        else:
            self._items.move_to_end(key)
        return value

    def __len__(self) -> int:
        return len(self._items)

    def __getitem__(self, key: K) -> V:
        return self._items[key]

    def items(self) -> list[tuple[K, V]]:
        return list(self._items.items())
