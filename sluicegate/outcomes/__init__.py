"""Outcomes: what sessions produced (PRs merged, tickets closed, incidents resolved, eval
runs), recorded through the admin API and webhooks, joined to the ledger by session id."""
