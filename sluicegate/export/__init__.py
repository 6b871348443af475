"""Streaming export of ledger rows and rollups for warehouses (CSV, Parquet).

    sources.py   what can be exported: a table, its keyset, its filters (SOURCES)
    columns.py   a table's columns as exported, each with a kind (times twice: ISO, unix)
    cursor.py    the opaque resume cursor, bound to one source and grain
    reader.py    the plan (end key fixed at the start) and the keyset pages up to it
    formats.py   the encoders by format name (FORMATS); csv_encoder, parquet_encoder
    stream.py    the HTTP response: pages read, encoded off the loop, sent, stopped when
                 the client leaves

The admin routes are in `server/export_api.py`; docs/export.md is the user's page.
"""
