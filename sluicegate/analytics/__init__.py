"""The control room's engine: rollups kept as ledger batches land, and the queries panels
answer from."""
