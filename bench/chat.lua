-- wrk script: one non-streamed chat completion per request.
-- The body and key come from the environment so the same script drives every scenario.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. (os.getenv("BENCH_KEY") or "bench")
wrk.headers["X-Sluice-Project"] = "bench"
wrk.headers["X-Sluice-Session-ID"] = "bench-session"
wrk.body = os.getenv("BENCH_BODY")
