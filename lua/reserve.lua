-- reserve.lua: hold qty units of one sku for one order, idempotent by order id.
--
-- KEYS[1]  {sku} stock hash: available, reserved, sold, added
-- KEYS[2]  {sku} reservation record of this order: state, qty, order
-- ARGV[1]  order id
-- ARGV[2]  quantity, an integer > 0
-- ARGV[3]  keep_ms, an integer >= 0: a record this call makes REJECTED
--          expires after that many ms (and says so: field expires = 1), for
--          retention (README "Retention"); 0 keeps it for good
--
-- Returns the reservation's state after the call, as a status string:
--   RESERVED   the units are held (by this call or an earlier one)
--   REJECTED   not enough available; recorded, so a replay answers the same
--   COMMITTED  an earlier reservation was already committed (replay)
--   RELEASED   an earlier reservation was already released (replay); a
--              release that ran first leaves this tombstone, so a late
--              reserve never holds stock for an order that gave it up
-- Errors: "ERR orderd: bad quantity".
local qty = tonumber(ARGV[2])
if not qty or qty <= 0 or qty ~= math.floor(qty) then
  return redis.error_reply('ERR orderd: bad quantity')
end
local state = redis.call('HGET', KEYS[2], 'state')
if state then
  return {ok = state}
end
local available = tonumber(redis.call('HGET', KEYS[1], 'available') or 0)
if available < qty then
  redis.call('HSET', KEYS[2], 'state', 'REJECTED', 'qty', qty, 'order', ARGV[1])
  local keep = tonumber(ARGV[3]) or 0
  if keep > 0 then
    redis.call('HSET', KEYS[2], 'expires', 1)
    redis.call('PEXPIRE', KEYS[2], keep)
  end
  return {ok = 'REJECTED'}
end
redis.call('HINCRBY', KEYS[1], 'available', -qty)
redis.call('HINCRBY', KEYS[1], 'reserved', qty)
redis.call('HSET', KEYS[2], 'state', 'RESERVED', 'qty', qty, 'order', ARGV[1])
return {ok = 'RESERVED'}
