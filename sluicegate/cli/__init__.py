"""The `sluicegate` command line: one module per command group."""
