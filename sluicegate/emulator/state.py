"""Everything the emulator remembers between requests, owned by one object per app."""

from __future__ import annotations

import random
from collections import Counter

from sluicegate.emulator.faults import ANY_MODEL, Fault, RequestFaults, decide
from sluicegate.emulator.prompt_cache import PromptCacheMemory

NO_MODEL = "(none)"  # stats key for requests that name no model (model lists, bad bodies)


class EmulatorState:
    def __init__(self, faults: dict[str, Fault] | None = None, *, seed: int = 0) -> None:
        self._seed = seed
        self.rng = random.Random(seed)  # seeded so failure_rate draws repeat run to run
        self.faults: dict[str, Fault] = dict(faults or {})
        self.request_counts: Counter[str] = Counter()
        self.prompt_cache = PromptCacheMemory()

    def count_request(self, model: str | None) -> None:
        self.request_counts[model or NO_MODEL] += 1

    def stats(self) -> dict[str, object]:
        return {"requests": dict(self.request_counts), "total": sum(self.request_counts.values())}

    def faults_for(self, model: str | None) -> RequestFaults:
        fault = self.faults.get(model) if model else None
        return decide(fault or self.faults.get(ANY_MODEL), self.rng)

    def replace_faults(self, faults: dict[str, Fault]) -> None:
        self.faults = dict(faults)

    def merge_faults(self, faults: dict[str, Fault], removed: set[str]) -> None:
        self.faults = {m: f for m, f in self.faults.items() if m not in removed}
        self.faults.update(faults)

    def faults_json(self) -> dict[str, object]:
        return {model: fault.as_json() for model, fault in self.faults.items()}

    def reset(self) -> None:
        self.rng = random.Random(self._seed)
        self.faults = {}
        self.request_counts.clear()
        self.prompt_cache.clear()
