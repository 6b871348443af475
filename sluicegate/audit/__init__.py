"""The admin audit trail: what admin API callers saw of people and what they changed."""
