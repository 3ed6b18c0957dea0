-- stock_add.lua: add units of one sku, idempotent by adjustment id.
--
-- KEYS[1]  {sku} stock hash: available, reserved, sold, added
-- KEYS[2]  {sku} set of adjustment ids already applied
-- ARGV[1]  adjustment id (unique per stock addition, from the journal)
-- ARGV[2]  quantity, an integer > 0
--
-- Returns {applied, available}: applied is 1 when this call added the units
-- and 0 when the adjustment had been applied before (nothing changes then).
-- Errors: "ERR orderd: bad quantity" when ARGV[2] is not a positive integer.
local qty = tonumber(ARGV[2])
if not qty or qty <= 0 or qty ~= math.floor(qty) then
  return redis.error_reply('ERR orderd: bad quantity')
end
if redis.call('SADD', KEYS[2], ARGV[1]) == 0 then
  return {0, tonumber(redis.call('HGET', KEYS[1], 'available') or 0)}
end
redis.call('HINCRBY', KEYS[1], 'added', qty)
redis.call('HINCRBY', KEYS[1], 'reserved', 0)
redis.call('HINCRBY', KEYS[1], 'sold', 0)
return {1, redis.call('HINCRBY', KEYS[1], 'available', qty)}
