-- Flush a replica's capacity leases (redis_lease.py) in one call: per lease, add the
-- consumption settled against it to `used`, shrink its hold by as much (consumption now
-- counted in `used` must not stay reserved too; more when the replica overspent through
-- Redis) and push its deadline forward, or return it (release all it holds).
-- KEYS: counter hashes H, each followed by its sorted set Z, and lease reservation hashes
-- ARGV[1]: one JSON array [now, lease ttl seconds, leases]; per lease [lease id, logical
--       key, position in KEYS of H, position of its reservation hash, consumption, shrink
--       (>= consumption; both strings), return (0/1), known (1: the replica saw it granted),
--       seq]: a lease's consumption and shrink are applied once per seq (a replica whose
--       call timed out sends them again, not knowing whether they were applied: shrinking
--       a hold twice would leave the replica admitting against capacity it lost), and a
--       send again answers with the change the first one made
-- Returns, per lease, {lost, change, used, reserved}: lost = 1 when a known lease holds
-- nothing any more (it lapsed, or the data is gone; its consumption is still added, as
-- settle does, to a counter that exists); change = what its hold changed by (<= 0);
-- used, reserved = the counter's level after. {-1, message} when a command failed for it.
local args = cjson.decode(ARGV[1])
local now, ttl = tonumber(args[1]), tonumber(args[2])
local out = {}

local function flush(rid, key, h, z, rkey, consumed, shrink, back, known, seq)
  local last = redis.call('HMGET', rkey, 'seq', 'change')
  local again = seq <= tonumber(last[1] or '0')
  if again then consumed, shrink = 0, 0 end
  local cur = lease_live(h, z, rkey, rid, key, now)
  local change = 0
  if cur and back then
    lease_hold(h, z, rkey, rid, key, cur, nil, now, now)
    change = -cur
  elseif cur then
    local new = math.max(0, cur - shrink)
    lease_hold(h, z, rkey, rid, key, cur, new, now + ttl, now)
    change = new - cur
  end
  if back then
    -- Gone for good (were this call sent again, its consumption would count twice:
    -- too much rather than too little)
    redis.call('DEL', rkey)
  elseif again then
    change = change + tonumber(last[2] or '0')  -- what the first send did, unanswered
  elseif consumed > 0 or shrink > 0 then
    redis.call('HSET', rkey, 'seq', seq, 'change', fmt(change))
    extend(rkey, (ttl + 60) * 1000)
  end
  if consumed > 0 and redis.call('EXISTS', h) == 1 then
    add_used(h, consumed, now)
  end
  local used, reserved = level(h, z, now)
  return {(cur == nil and known) and 1 or 0, change, used, reserved}
end

for j, l in ipairs(args[3]) do
  out[j] = protected(flush, l[1], l[2], KEYS[l[3]], KEYS[l[3] + 1], KEYS[l[4]],
                     tonumber(l[5]), tonumber(l[6]), l[7] == 1, l[8] == 1, l[9])
end
return out
