-- The cutoff of a budget counter (redis_store.py, "Budget spend and the ledger"): the
-- arrival time from which this Redis counts its requests; those that arrived before are
-- the ledger's. Creates the counter with cutoff `now` when it does not exist, and fixes
-- the cutoff (s): admissions of earlier arrivals no longer move it, the ledger has them.
-- KEYS: H, Z   ARGV: now, expires_at, window_s (0 = fixed), bucket_s
-- Returns the cutoff as stored ("0": a counter from before cutoffs, that counted all).
local h = KEYS[1]
local now, expires_at, ws = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
if redis.call('EXISTS', h) == 0 then
  redis.call('HSET', h, 't', ARGV[1], 's', '1')
  if ws > 0 then redis.call('HSET', h, 'ws', ARGV[3], 'bs', ARGV[4]) end
  extend(h, (expires_at - now) * 1000)
  return ARGV[1]
end
local t = redis.call('HGET', h, 't')
if not t then return '0' end
redis.call('HSET', h, 's', '1')
return t
