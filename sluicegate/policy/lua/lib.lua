-- Shared by every counter script (prepended when the script is registered).
-- A counter is a hash H {u = used, r = reserved, ws/bs = sliding window and bucket
-- seconds, b:<bucket start> = used in that bucket} and a sorted set Z of in-flight
-- reservations, member "<reservation id>|<amount>", score = deadline (unix seconds).
-- A budget counter also has t = its cutoff (when this Redis started counting it) and
-- l (or l:<bucket start>) = the ledger's spend of requests that arrived before t: used
-- is u + l (see redis_store.py, "Budget spend and the ledger").

local function fmt(n)
  return string.format('%d', n)
end

-- Sets a TTL of `ms` milliseconds unless the key already lives longer.
local function extend(key, ms)
  if ms < 1000 then ms = 1000 end
  if redis.call('PTTL', key) < ms then
    redis.call('PEXPIRE', key, fmt(math.ceil(ms)))
  end
end

-- Releases reservations whose deadline has passed (a crashed replica never settles).
local function purge(h, z, now)
  local gone = redis.call('ZRANGEBYSCORE', z, '-inf', now)
  if #gone == 0 then return end
  local freed = 0
  for _, member in ipairs(gone) do
    freed = freed + (tonumber(string.match(member, '|(%d+)$')) or 0)
  end
  redis.call('ZREMRANGEBYSCORE', z, '-inf', now)
  if freed > 0 then redis.call('HINCRBY', h, 'r', fmt(-freed)) end
end

-- used, reserved, live bucket count of a counter at `now`.
local function level(h, z, now)
  purge(h, z, now)
  local f = redis.call('HMGET', h, 'r', 'ws', 'u', 'l')
  local reserved, ws = tonumber(f[1] or '0'), f[2]
  if not ws then
    return tonumber(f[3] or '0') + tonumber(f[4] or '0'), reserved, 0
  end
  local bs = tonumber(redis.call('HGET', h, 'bs'))
  local cutoff = now - tonumber(ws)
  local used, live = 0, 0
  local fields = redis.call('HGETALL', h)
  for i = 1, #fields, 2 do
    local f = fields[i]
    local kind = string.sub(f, 1, 2)
    if kind == 'b:' or kind == 'l:' then
      if tonumber(string.sub(f, 3)) + bs <= cutoff then
        redis.call('HDEL', h, f)
      else
        used = used + tonumber(fields[i + 1])
        live = live + 1
      end
    end
  end
  return used, reserved, live
end

-- Adds settled consumption: to `u`, or to the current bucket of a sliding counter.
local function add_used(h, amount, now)
  local bs = redis.call('HGET', h, 'bs')
  if not bs then
    redis.call('HINCRBY', h, 'u', fmt(amount))
    return
  end
  bs = tonumber(bs)
  local ws = tonumber(redis.call('HGET', h, 'ws'))
  redis.call('HINCRBY', h, 'b:' .. fmt(math.floor(now / bs) * bs), fmt(amount))
  extend(h, (ws + bs + 60) * 1000)
end

-- Capacity leases (redis_lease.py): a lease is a reservation like any other (its hold in
-- `r`, Z and its reservation hash R), whose amount changes in place and whose deadline is
-- pushed forward while its replica lives.
-- What lease `rid` holds on the counter now, or nil when it holds nothing live (never
-- granted, returned, lapsed, or gone with the data); a lapsed hold that purge() has not
-- reached yet is released here as purge() would.
local function lease_live(h, z, rkey, rid, key, now)
  local cur = redis.call('HGET', rkey, key)
  if not cur then return nil end
  local member = rid .. '|' .. cur
  local score = redis.call('ZSCORE', z, member)
  if score and tonumber(score) > now then return tonumber(cur) end
  if score and redis.call('ZREM', z, member) == 1 and tonumber(cur) > 0 then
    redis.call('HINCRBY', h, 'r', fmt(-tonumber(cur)))
  end
  redis.call('HDEL', rkey, key)
  return nil
end

-- Makes lease `rid`, holding `cur` (nil: nothing), hold `new` until `deadline`; a `new`
-- of nil returns the lease (a hold of 0 is kept: it tells a live lease from a lost one).
local function lease_hold(h, z, rkey, rid, key, cur, new, deadline, now)
  if cur then redis.call('ZREM', z, rid .. '|' .. fmt(cur)) end
  local change = (new or 0) - (cur or 0)
  if change > 0 or (change < 0 and redis.call('EXISTS', h) == 1) then
    redis.call('HINCRBY', h, 'r', fmt(change))
  end
  if new == nil then
    redis.call('HDEL', rkey, key)
    return
  end
  redis.call('ZADD', z, deadline, rid .. '|' .. fmt(new))
  redis.call('HSET', rkey, key, fmt(new))
  local ms = (deadline - now) * 1000
  extend(h, ms)
  extend(z, ms)
  extend(rkey, ms + 60000)
end

-- Calls fn(...) for one entry of a batch: its result, or {-1, message} when a Redis
-- command failed for it (the error stays with that entry; the batch goes on).
local function protected(fn, ...)
  local ok, result = pcall(fn, ...)
  if not ok then
    result = {-1, type(result) == 'table' and result.err or tostring(result)}
  end
  return result
end
