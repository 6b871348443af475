"""sluicegate: a self-hosted AI gateway and control room."""

__version__ = "0.1.0"
