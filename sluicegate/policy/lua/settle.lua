-- Settle a batch of reservations, one after another: drop each one's holds and record
-- actual consumption, then release whatever else it still holds.
-- KEYS: per reservation, in batch order: its reservation hash, then H1, Z1, H2, Z2, ...
--       for each of its logical keys below
-- ARGV: one JSON array with, per reservation, [now, reservation id, [[logical key,
--       actual amount], ...]] (now and amounts are strings; an actual of 0 releases)
-- Returns, per reservation, the logical keys it still holds that were not named here
-- (another replica admitted it with keys this one did not know): settle them with 0.
local batch = cjson.decode(ARGV[1])
local out = {}
local k = 1

for j = 1, #batch do
  local now, rid, actuals = tonumber(batch[j][1]), batch[j][2], batch[j][3]
  local rkey = KEYS[k]
  k = k + 1
  for i = 1, #actuals do
    local h, z = KEYS[k], KEYS[k + 1]
    k = k + 2
    local logical, actual = actuals[i][1], tonumber(actuals[i][2])
    local amount = redis.call('HGET', rkey, logical)
    if amount then
      if redis.call('ZREM', z, rid .. '|' .. amount) == 1 and tonumber(amount) > 0 then
        redis.call('HINCRBY', h, 'r', fmt(-tonumber(amount)))
      end
      redis.call('HDEL', rkey, logical)
    end
    if actual > 0 and redis.call('EXISTS', h) == 1 then
      add_used(h, actual, now)
    end
  end
  out[j] = redis.call('HKEYS', rkey)
end
return out
