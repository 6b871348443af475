"""Config as code: policy documents parsed, validated, diffed, versioned and hot-reloaded.

registry.py    document type -> pydantic model, imported lazily by dotted name
problems.py    ConfigValidationError and the translation of pydantic errors to paths
parse.py       YAML / JSON text -> validated `Document`s (all problems collected)
diff.py        canonical rendering and per-document unified diffs
service.py     apply / delete / rollback / history against a version store
live.py        the live snapshot every replica serves, polled and swapped atomically
"""
