-- Raise the ledger part of a budget counter to what the ledger holds now for requests
-- that arrived in its window before its cutoff (the ledger only gains rows, so the
-- largest answer is the truest; replicas seeding at once, or again, never add twice).
-- KEYS: H, Z   ARGV: now, expires_at, cutoff (as cutoff.lua returned it), window_s
-- (0 = fixed), bucket_s, then one amount (fixed) or pairs of bucket start, amount
-- (sliding). Returns what the ledger part grew by, or -1 when the counter's cutoff is
-- no longer `cutoff` (its data was lost again: ask cutoff.lua anew).
local h = KEYS[1]
local now, expires_at, ws = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[4])
if redis.call('HGET', h, 't') ~= ARGV[3] then return -1 end
local grew = 0
local function raise(field, amount)
  local cur = tonumber(redis.call('HGET', h, field) or '0')
  if amount > cur then
    redis.call('HSET', h, field, fmt(amount))
    grew = grew + amount - cur
  end
end
if ws == 0 then
  raise('l', tonumber(ARGV[6]))
else
  local cutoff = now - ws - tonumber(ARGV[5])
  for i = 6, #ARGV, 2 do
    if tonumber(ARGV[i]) > cutoff then raise('l:' .. ARGV[i], tonumber(ARGV[i + 1])) end
  end
end
extend(h, (expires_at - now) * 1000)
return grew
