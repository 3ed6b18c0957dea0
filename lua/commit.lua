-- commit.lua: turn one order's held units of one sku into sold units, idempotently.
--
-- KEYS[1]  {sku} stock hash: available, reserved, sold, added
-- KEYS[2]  {sku} reservation record of this order: state, qty, order
-- ARGV[1]  order id
--
-- Returns the reservation's state after the call, as a status string:
--   COMMITTED  the units are sold (by this call or an earlier one)
--   RELEASED   the reservation was released before: nothing is sold
--   REJECTED   the line was never held: nothing is sold
--   MISSING    there is no reservation for this order and sku
-- Only the first reply means success; the others are saga bugs the caller logs.
local state = redis.call('HGET', KEYS[2], 'state')
if not state then
  return {ok = 'MISSING'}
end
if state ~= 'RESERVED' then
  return {ok = state}
end
local qty = tonumber(redis.call('HGET', KEYS[2], 'qty'))
redis.call('HINCRBY', KEYS[1], 'reserved', -qty)
redis.call('HINCRBY', KEYS[1], 'sold', qty)
redis.call('HSET', KEYS[2], 'state', 'COMMITTED')
return {ok = 'COMMITTED'}
