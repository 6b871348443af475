"""Rate limits and budgets enforced before the call, settled after it.

documents.py   config document models (pydantic), parsed through sluicegate.config
compiled.py    compile_policy(docs, aliases=...) -> CompiledPolicy (frozen, closures)
engine.py      PolicyEngine: admit / settle / settle_soon / budget_status / rebuild_budgets
counters/      CounterStore Protocol; MemoryCounterStore; RedisCounterStore (Lua)
budgets.py     budget alerts (raised to an alerts.AlertSink), status, rebuild from the ledger
store_health.py   the counter store's health; when budget spend is rebuilt
landed_wait.py    a rebuild waits for every replica's ledger to land before reading it
"""

from sluicegate.policy.admission import Admission, AdmissionInput, PolicyBlocked
from sluicegate.policy.compiled import CompiledPolicy, compile_policy
from sluicegate.policy.engine import PolicyEngine

__all__ = [
    "Admission",
    "AdmissionInput",
    "CompiledPolicy",
    "PolicyBlocked",
    "PolicyEngine",
    "compile_policy",
]
