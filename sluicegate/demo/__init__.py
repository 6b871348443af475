"""`sluicegate demo`: a synthetic organisation driven through a running gateway, so every
control-room panel has something true to show.

    org       who works there: teams, projects, users, their tools, the workflows
    plan      the requests, planned up front from a seed (same seed, same plan)
    drivers   one planned call sent with the openai / anthropic SDK or plain httpx
    setup     keys per user and the examples/demo documents, through the admin API
    outcomes  what some sessions produced: POST /api/outcomes or a signed GitHub webhook
    backfill  past days written straight into the ledger with the gateway's store code
    runner    the plan run with bounded concurrency, a deadline and a progress bar
"""
