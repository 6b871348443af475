-- KEYS: H1, Z1, H2, Z2, ...   ARGV: now
-- Returns used1, reserved1, leased1, used2, ...: leased is the part of reserved held by
-- replicas' capacity leases (members "lease:..."), the rest is held by requests in flight.
local now = tonumber(ARGV[1])
local out = {}
for i = 1, #KEYS / 2 do
  local h, z = KEYS[2 * i - 1], KEYS[2 * i]
  local used, reserved = level(h, z, now)
  local leased = 0
  for _, member in ipairs(redis.call('ZRANGE', z, 0, -1)) do
    if string.sub(member, 1, 6) == 'lease:' then
      leased = leased + (tonumber(string.match(member, '|(%d+)$')) or 0)
    end
  end
  out[3 * i - 2] = used
  out[3 * i - 1] = reserved
  out[3 * i] = leased
end
return out
