"""Python's garbage collector, kept out of live calls.

A full collection walks every object the collector tracks, with the GIL held. After start-up that is the
models' Python sides, AutoGen, pydantic and the rest: measured 60 ms for one full collection here, during which
every call's RTP sender, audio thread and voice loop stand still (the RTP sender then skips 2-3 packets). Python
starts one on its own whenever enough objects have survived younger collections, so sooner or later mid-call.

What is alive at start-up, and again whenever no call is live, is frozen (``gc.freeze``: moved where the
collector never looks). A collection during calls then only walks what those calls made: 1-2 ms measured.
"""

from __future__ import annotations

import gc
import time


def settle() -> float:
    """Collect everything, the formerly frozen included (some of it may be garbage by now), then freeze the rest.
    Only while no call is live: it holds the GIL for a full collection. Returns the seconds it took."""
    started = time.perf_counter()
    gc.unfreeze()
    gc.collect()
    gc.freeze()
    return time.perf_counter() - started
