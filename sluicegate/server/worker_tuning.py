"""The interpreter settings of a gateway worker process, applied once its app is built
(`app.app_from_env`, what `serve` runs; not in tests or embedders' processes).

Measured under the overload bench (bench/overload.py, one worker at ~1,600 req/s, 60%
shed; bench/README.md "Overload"), the worker's own stalls were:

- Cyclic GC. With the default thresholds (700, 10, 10) the collector ran 35-56 young and
  3-5 middle collections a second, 0.3-0.5 ms and 3-5 ms of CPU each (in-flight requests
  and the ledger queue survive young collections, so every middle one walks them): 2-6%
  of the worker's CPU, and a request arriving during a middle collection waits its whole
  length. Steady-state traffic makes almost no cyclic garbage (DEBUG_SAVEALL: a few dozen
  objects every 4 s; reference counting frees the rest), so collecting rarely costs no
  memory: at 10,000 the collector runs about once every two seconds.
- The GIL. Two kinds of thread besides the event loop take it: granian's, to hand each
  request and each `receive()` result to Python, and the ledger writer's, which computes
  rollup deltas in Python (~2-3 ms of CPU per 500-record batch). A thread that wants the
  GIL waits until the holder releases it or for the switch interval (5 ms by default);
  1 ms bounds that wait. The cost, a forced switch per ms while two threads both run
  Python, is small next to a 5 ms stall.

Everything alive at start-up (modules, config, caches) is frozen out of the collector's
sight first, so the collections that remain are cheaper (~4 us a request).
"""

from __future__ import annotations

import gc
import sys

GC_THRESHOLDS = (10_000, 10, 10)  # young, middle, old (CPython's default: 700, 10, 10)
SWITCH_INTERVAL_S = 0.001  # CPython's default: 0.005


def tune_worker() -> None:
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    sys.setswitchinterval(SWITCH_INTERVAL_S)
