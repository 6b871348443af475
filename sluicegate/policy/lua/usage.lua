-- KEYS: H1, Z1, H2, Z2, ...   ARGV: now
-- Returns used1, reserved1, used2, reserved2, ...
local now = tonumber(ARGV[1])
local out = {}
for i = 1, #KEYS / 2 do
  local used, reserved = level(KEYS[2 * i - 1], KEYS[2 * i], now)
  out[2 * i - 1] = used
  out[2 * i] = reserved
end
return out
