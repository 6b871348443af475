"""What-if: a config change replayed on the ledger before it is applied.

window.py          the replayed stretch (`7d`, `36h`; at most 31 days)
rows.py            ledger rows in time order, a keyset page at a time
routes.py          RouteBook: model + envelope -> targets, shares and prices (a Costing)
tally.py           what rules did to requests: refused, fallback, queued, audited
policy_replay.py   the proposed limits and budgets on the live engine, simulated clock
routing_replay.py  the cost of requests the proposal routes differently
replayer.py        one row through the live tally, routing and policy replays
report.py          the answer's plain data; findings.py its sentences; assemble.py builds it
service.py         WhatIf.run: validate as apply does, compile, replay, bounded

Served at POST /api/config/what-if (server/admin_whatif.py) and by
`sluicegate apply -f FILE --what-if 7d`; docs/what-if.md says what the figures mean.
"""
