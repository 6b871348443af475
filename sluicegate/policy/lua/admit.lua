-- Check-and-reserve a batch of admissions, one after another. Each is atomic on its own
-- (every counter of it reserved, or none) and sees the admissions before it in the batch.
-- KEYS: every key the batch touches, once: counter hashes H, each followed by its sorted
--       set Z, and reservation hashes, in any order
-- ARGV[1]: one JSON array with, per admission, [now, reservation id, ttl seconds, checks,
--       position in KEYS of its reservation hash, positions of its checks' H, leases,
--       arrived (when its request arrived, unix seconds, a string)];
--       checks: per check [logical key, limit, amount, expires_at, window_s (0 = fixed),
--       bucket_s, ledger (1: a budget counter, rebuilt from the ledger: it needs the
--       seeding mark, and its cutoff t is the earliest arrival admitted into it until a
--       rebuild fixed it (s, see cutoff.lua))], numbers as strings except ledger
--       (one packed argument: encoding ~30 separate ones per
--       admission cost redis-py ~0.3 ms a call); leases: capacity leases asked for along
--       with it, per lease [check index (1-based), position of the lease's reservation
--       hash, lease id, known (1: the replica saw it granted)]
-- ARGV[2..5]: lease ttl seconds, share, max, min (see grant below)
-- ARGV[6]: position in KEYS of the seeding mark (0: no admission of the batch has a
--       ledger check). Without the mark this Redis lost its data (or is new) and budget
--       spend is not rebuilt yet: an admission with a ledger check is then refused as
--       {-2, message}, reserving nothing, until a replica has rebuilt it and set the mark.
-- Returns, per admission, {0, levels, grants} when reserved, {i, levels} when its check i
-- (1-based) does not fit; levels = used1, reserved1, used2, reserved2, ... before it;
-- grants = per lease asked for, what was added to it (0: none; -1: a known lease holds
-- nothing any more: it lapsed, or the data is gone); {-1, message} when a Redis command
-- failed for it (say, a key of the wrong type): the error stays with that admission, the
-- others are applied as if it were alone.
local batch = cjson.decode(ARGV[1])
local lease_ttl, lease_share = tonumber(ARGV[2]), tonumber(ARGV[3])
local lease_max, lease_min = tonumber(ARGV[4]), tonumber(ARGV[5])
local mark_at = tonumber(ARGV[6] or '0')
local seeded = mark_at == 0 or redis.call('EXISTS', KEYS[mark_at]) == 1
local out = {}

-- Adds to a lease on check i once the admission is reserved: a share of what is still
-- free, so replicas leave each other room, and only a slice worth having (small limits
-- never lease: they stay exact across replicas).
local function grant(now, checks, at, levels, ask)
  local i = ask[1]
  local h, z, c = KEYS[at[i]], KEYS[at[i] + 1], checks[i]
  local rkey, rid = KEYS[ask[2]], ask[3]
  local cur = lease_live(h, z, rkey, rid, c[1], now)
  if cur == nil and ask[4] == 1 then return -1 end
  local amount = math.max(1, tonumber(c[3]))
  local free = tonumber(c[2]) - levels[2 * i - 1] - tonumber(redis.call('HGET', h, 'r') or '0')
  local g = math.min(lease_max * amount, math.floor(free / lease_share))
  if g < lease_min * amount then return 0 end
  lease_hold(h, z, rkey, rid, c[1], cur, (cur or 0) + g, now + lease_ttl, now)
  return g
end

local function admit(now, rid, ttl, checks, rkey, at, asks, arrived)
  local n = #checks
  local levels = {}
  local failed = 0
  if not seeded then
    for i = 1, n do
      if checks[i][7] == 1 then
        return {-2, 'budget spend not rebuilt from the ledger yet (the counter store lost its data)'}
      end
    end
  end
  for i = 1, n do
    local h, z, c = KEYS[at[i]], KEYS[at[i] + 1], checks[i]
    if tonumber(c[5]) > 0 and redis.call('HEXISTS', h, 'ws') == 0 then
      redis.call('HSET', h, 'ws', c[5], 'bs', c[6])
      extend(h, (tonumber(c[4]) - now) * 1000)
    end
    local used, reserved = level(h, z, now)
    levels[2 * i - 1] = used
    levels[2 * i] = reserved
    if failed == 0 and used + reserved + tonumber(c[3]) > tonumber(c[2]) then
      failed = i
    end
  end
  if failed > 0 then
    return {failed, levels}
  end

  local deadline = now + ttl
  for i = 1, n do
    local h, z, c = KEYS[at[i]], KEYS[at[i] + 1], checks[i]
    local amount = c[3]
    redis.call('HINCRBY', h, 'r', amount)
    if c[7] == 1 then
      local cut = redis.call('HMGET', h, 't', 's')
      if not cut[1] or (not cut[2] and tonumber(arrived) < tonumber(cut[1])) then
        redis.call('HSET', h, 't', arrived)
      end
    end
    redis.call('ZADD', z, deadline, rid .. '|' .. amount)
    redis.call('HSET', rkey, c[1], amount)
    local ms = (math.max(tonumber(c[4]), deadline) - now) * 1000
    extend(h, ms)
    extend(z, ms)
  end
  extend(rkey, (ttl + 60) * 1000)
  local grants = {}
  for k = 1, #(asks or {}) do
    local granted, g = pcall(grant, now, checks, at, levels, asks[k])
    grants[k] = granted and g or 0  -- a lease is an optimisation: its failure is no error
  end
  return {0, levels, grants}
end

for j = 1, #batch do
  local a = batch[j]
  out[j] = protected(admit, tonumber(a[1]), a[2], tonumber(a[3]), a[4], KEYS[a[5]], a[6], a[7],
                     a[8])
end
return out
