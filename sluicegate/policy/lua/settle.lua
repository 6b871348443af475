-- Settle a batch of reservations, one after another: drop each one's holds and record
-- actual consumption, then release whatever else it still holds.
-- KEYS: every key the batch touches, once: reservation hashes and counter hashes H, each
--       followed by its sorted set Z, in any order
-- ARGV: one JSON array with, per reservation, [now, reservation id, position in KEYS of
--       its reservation hash, [[logical key, actual amount, position of the key's H], ...],
--       arrived (when its request arrived, unix seconds; "0": unknown), held only (1: a
--       settlement sent again, whose first call may have been applied: its actuals
--       count only where its hold is still there)] (now, amounts and arrived are
--       strings; an actual of 0 releases)
-- An actual is added to a counter that exists when the counter has no cutoff t, or the
-- request arrived at or after t (arrival unknown: when this Redis knows the
-- reservation): one that arrived before t (before a data loss, or while a rebuild was
-- awaited) is in the counter's ledger part l instead: counting it here too would count
-- it twice.
-- Returns, per reservation, the logical keys it still holds that were not named here
-- (another replica admitted it with keys this one did not know): settle them with 0.
local batch = cjson.decode(ARGV[1])
local out = {}

for j = 1, #batch do
  local now, rid, rkey, actuals = tonumber(batch[j][1]), batch[j][2], KEYS[batch[j][3]], batch[j][4]
  local arrived = tonumber(batch[j][5] or '0')
  local held_only = batch[j][6] == 1
  for i = 1, #actuals do
    local logical, actual, at = actuals[i][1], tonumber(actuals[i][2]), actuals[i][3]
    local h, z = KEYS[at], KEYS[at + 1]
    local amount = redis.call('HGET', rkey, logical)
    if amount then
      if redis.call('ZREM', z, rid .. '|' .. amount) == 1 and tonumber(amount) > 0 then
        redis.call('HINCRBY', h, 'r', fmt(-tonumber(amount)))
      end
      redis.call('HDEL', rkey, logical)
    end
    if actual > 0 and redis.call('EXISTS', h) == 1 then
      local t = redis.call('HGET', h, 't')
      local counts = not t
      if t and arrived > 0 then
        counts = arrived >= tonumber(t)
      elseif t then
        counts = amount ~= false and amount ~= nil
      end
      if held_only and not amount then counts = false end
      if counts then add_used(h, actual, now) end
    end
  end
  out[j] = redis.call('HKEYS', rkey)
end
return out
