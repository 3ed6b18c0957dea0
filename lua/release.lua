-- release.lua: give one order's held units of one sku back to available, idempotently.
--
-- KEYS[1]  {sku} stock hash: available, reserved, sold, added
-- KEYS[2]  {sku} reservation record of this order: state, qty, order
-- ARGV[1]  order id
-- ARGV[2]  keep_ms, an integer >= 0: a record this call makes RELEASED
--          expires after that many ms (and says so: field expires = 1), for
--          retention (README "Retention"); 0 keeps it for good
--
-- Returns the reservation's state after the call, as a status string:
--   RELEASED   the units are available again (by this call or an earlier
--              one); with no record at all a RELEASED tombstone of qty 0 is
--              written, so a reserve replayed later holds nothing
--   REJECTED   the line was never held: nothing to give back
--   COMMITTED  the units were sold before: sold units are never given back
local keep = tonumber(ARGV[2]) or 0
local function forget_later()
  if keep > 0 then
    redis.call('HSET', KEYS[2], 'expires', 1)
    redis.call('PEXPIRE', KEYS[2], keep)
  end
end
local state = redis.call('HGET', KEYS[2], 'state')
if not state then
  redis.call('HSET', KEYS[2], 'state', 'RELEASED', 'qty', 0, 'order', ARGV[1])
  forget_later()
  return {ok = 'RELEASED'}
end
if state ~= 'RESERVED' then
  return {ok = state}
end
local qty = tonumber(redis.call('HGET', KEYS[2], 'qty'))
redis.call('HINCRBY', KEYS[1], 'reserved', -qty)
redis.call('HINCRBY', KEYS[1], 'available', qty)
redis.call('HSET', KEYS[2], 'state', 'RELEASED')
forget_later()
return {ok = 'RELEASED'}
