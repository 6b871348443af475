-- Seed `used` of a counter that has none (rebuilding budgets from the ledger).
-- KEYS: H, Z   ARGV: now, expires_at, window_s (0 = fixed), bucket_s, then either
-- one amount (fixed) or pairs of bucket start, amount (sliding). Returns 1 if seeded.
local h, z = KEYS[1], KEYS[2]
local now, expires_at, ws = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local ms = (expires_at - now) * 1000
if ws == 0 then
  if redis.call('HSETNX', h, 'u', ARGV[5]) == 0 then return 0 end
  extend(h, ms)
  return 1
end
if redis.call('HEXISTS', h, 'ws') == 0 then
  redis.call('HSET', h, 'ws', ARGV[3], 'bs', ARGV[4])
end
local _, _, live = level(h, z, now)
if live > 0 then return 0 end
for i = 5, #ARGV, 2 do
  if tonumber(ARGV[i + 1]) > 0 then
    redis.call('HINCRBY', h, 'b:' .. ARGV[i], ARGV[i + 1])
  end
end
extend(h, ms)
return 1
