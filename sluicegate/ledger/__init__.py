"""The ledger: one record per request, queued on the hot path and written in batches by a
single writer (`writer.LedgerWriter`) to a `store.LedgerStore` (SQL or memory)."""
