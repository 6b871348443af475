-- The cutoff of a budget counter (redis_store.py, "Budget spend and the ledger"): the
-- time this Redis started counting it, below which its spend comes from the ledger.
-- Creates the counter with cutoff `now` when it does not exist.
-- KEYS: H, Z   ARGV: now, expires_at, window_s (0 = fixed), bucket_s
-- Returns the cutoff as stored ("0": a counter from before cutoffs, that counted all).
local h = KEYS[1]
local now, expires_at, ws = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
if redis.call('EXISTS', h) == 0 then
  redis.call('HSET', h, 't', ARGV[1])
  if ws > 0 then redis.call('HSET', h, 'ws', ARGV[3], 'bs', ARGV[4]) end
  extend(h, (expires_at - now) * 1000)
  return ARGV[1]
end
return redis.call('HGET', h, 't') or '0'
