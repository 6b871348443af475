-- Check-and-reserve every counter of one admission, atomically.
-- KEYS: H1, Z1, H2, Z2, ..., reservation hash
-- ARGV: now, reservation id, ttl seconds, then six per check:
--       logical key, limit, amount, expires_at, window_s (0 = fixed), bucket_s
-- Returns {0, levels} when reserved, {i, levels} when check i (1-based) does not fit;
-- levels = used1, reserved1, used2, reserved2, ... before this admission.
local now = tonumber(ARGV[1])
local rid = ARGV[2]
local ttl = tonumber(ARGV[3])
local n = (#KEYS - 1) / 2
local rkey = KEYS[#KEYS]
local levels = {}
local failed = 0

for i = 1, n do
  local h, z, base = KEYS[2 * i - 1], KEYS[2 * i], 3 + (i - 1) * 6
  if tonumber(ARGV[base + 5]) > 0 and redis.call('HEXISTS', h, 'ws') == 0 then
    redis.call('HSET', h, 'ws', ARGV[base + 5], 'bs', ARGV[base + 6])
    extend(h, (tonumber(ARGV[base + 4]) - now) * 1000)
  end
  local used, reserved = level(h, z, now)
  levels[2 * i - 1] = used
  levels[2 * i] = reserved
  if failed == 0 and used + reserved + tonumber(ARGV[base + 3]) > tonumber(ARGV[base + 2]) then
    failed = i
  end
end
if failed > 0 then
  return {failed, levels}
end

local deadline = now + ttl
for i = 1, n do
  local h, z, base = KEYS[2 * i - 1], KEYS[2 * i], 3 + (i - 1) * 6
  local amount = ARGV[base + 3]
  redis.call('HINCRBY', h, 'r', amount)
  redis.call('ZADD', z, deadline, rid .. '|' .. amount)
  redis.call('HSET', rkey, ARGV[base + 1], amount)
  local ms = (math.max(tonumber(ARGV[base + 4]), deadline) - now) * 1000
  extend(h, ms)
  extend(z, ms)
end
extend(rkey, (ttl + 60) * 1000)
return {0, levels}
