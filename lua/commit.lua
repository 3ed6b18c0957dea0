-- commit.lua: turn one order's held units of one sku into sold units, idempotently.
--
-- KEYS[1]  {sku} stock hash: available, reserved, sold, added
-- KEYS[2]  {sku} reservation record of this order: state, qty, order
-- ARGV[1]  order id
-- ARGV[2]  keep_ms, an integer >= 0: a record this call makes COMMITTED
--          expires after that many ms (and says so: field expires = 1), for
--          retention (README "Retention"); 0 keeps it for good
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
local keep = tonumber(ARGV[2]) or 0
if keep > 0 then
  redis.call('HSET', KEYS[2], 'expires', 1)
  redis.call('PEXPIRE', KEYS[2], keep)
end
return {ok = 'COMMITTED'}
