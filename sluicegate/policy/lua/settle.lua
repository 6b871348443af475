-- Drop a reservation's holds and record actual consumption.
-- KEYS: reservation hash, then H1, Z1, H2, Z2, ...
-- ARGV: now, reservation id, and one JSON array of [logical key, actual amount] strings
-- Returns the logical keys the reservation still holds (not named here).
local now = tonumber(ARGV[1])
local rid = ARGV[2]
local rkey = KEYS[1]
local actuals = cjson.decode(ARGV[3])
local n = (#KEYS - 1) / 2

for i = 1, n do
  local h, z = KEYS[2 * i], KEYS[2 * i + 1]
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
return redis.call('HKEYS', rkey)
