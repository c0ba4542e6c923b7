"""The garbage collector settled between calls: cycles collected, the survivors frozen out of later collections."""

import gc
import weakref

from telephony.garbage import settle


class _Node:
    pass


def test_settle_collects_cycles_and_freezes_what_is_alive():
    node = _Node()
    node.itself = node  # a reference cycle: only the collector frees it
    gone = weakref.ref(node)
    del node
    alive = [[i] for i in range(50_000)]  # tracked containers that stay alive
    tracked_before = len(gc.get_objects())
    settle()
    try:
        assert gone() is None
        assert gc.get_freeze_count() >= len(alive)
        assert len(gc.get_objects()) < tracked_before / 10  # what a collection still walks
    finally:
        gc.unfreeze()


def test_what_was_frozen_is_collected_by_the_next_settle_once_it_is_garbage():
    node = _Node()
    node.itself = node
    gone = weakref.ref(node)
    settle()  # alive now: frozen
    try:
        del node
        gc.collect()
        assert gone() is not None  # a frozen cycle is out of the collector's sight...
        settle()
        assert gone() is None  # ...until the next settle, which unfreezes first
    finally:
        gc.unfreeze()
