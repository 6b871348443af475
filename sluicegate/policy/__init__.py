"""Rate limits and budgets enforced before the call, settled after it.

documents.py   config document models (pydantic), parsed through sluicegate.config
compiled.py    compile_policy(docs, aliases=...) -> CompiledPolicy (frozen, closures)
engine.py      PolicyEngine: admit / settle / settle_soon / budget_status / rebuild_budgets
counters/      CounterStore Protocol; MemoryCounterStore; RedisCounterStore (Lua)
budgets.py     budget alerts (raised to an alerts.AlertSink), status, rebuild from the ledger
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
