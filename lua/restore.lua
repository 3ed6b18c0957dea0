-- restore.lua: write back what the journal says one sku's keys hold, for orderctl recover --rebuild-redis.
--
-- Every mode replaces its keys whole (DEL, then write), so a second call
-- with the same arguments leaves the same state: a rebuild may be re-run.
-- ARGV[1] is the mode:
--
-- 'stock'        one sku's counters and its applied stock adjustments
--   KEYS[1]      {sku} stock hash: available, reserved, sold, added
--   KEYS[2]      {sku} set of adjustment ids already applied
--   ARGV[2..4]   added, reserved, sold: integers >= 0
--   ARGV[5..]    the ids of the adjustments that make up added
--   available is added - reserved - sold.  A sku with nothing added, held
--   or sold is left without keys, as reserve.lua leaves one it rejects.
--   Returns {available, number of adjustment ids in the set}.
--
-- 'reservation'  one order's reservation record of one sku
--   KEYS[1]      {sku} reservation record of this order: state, qty, order
--   ARGV[2]      state: RESERVED, REJECTED, COMMITTED or RELEASED
--   ARGV[3]      qty, an integer >= 0
--   ARGV[4]      order id
--   ARGV[5]      keep_ms, an integer >= 0: a record of a line that is over
--                (not RESERVED) expires after that many ms and says so
--                (expires = 1), as lua/commit.lua's; 0 keeps it for good
--   Returns the state written, as a status string.
--
-- 'drop'         delete keys of one sku (a --force rebuild starts clean)
--   KEYS[1..n]   keys sharing one {sku} hash tag
--   Returns the number of keys that existed.
--
-- Errors: "ERR orderd: bad mode", "ERR orderd: bad number",
-- "ERR orderd: bad state".
local function count(s)
  local n = tonumber(s)
  if not n or n < 0 or n ~= math.floor(n) then
    return nil
  end
  return n
end

local mode = ARGV[1]
if mode == 'stock' then
  local added, reserved, sold = count(ARGV[2]), count(ARGV[3]), count(ARGV[4])
  if not added or not reserved or not sold then
    return redis.error_reply('ERR orderd: bad number')
  end
  redis.call('DEL', KEYS[1], KEYS[2])
  local nids = #ARGV - 4
  if added == 0 and reserved == 0 and sold == 0 and nids == 0 then
    return {0, 0}
  end
  -- available may come out negative when the journal has not marked an
  -- adjustment applied that Redis had applied: orderd applies it again
  -- by its id at start, which brings available back.
  -- '%.0f': a Lua number as an argument is formatted '%.14g', which
  -- would write a large count in exponent notation.
  local available = added - reserved - sold
  redis.call('HSET', KEYS[1], 'available', string.format('%.0f', available),
    'reserved', string.format('%.0f', reserved), 'sold', string.format('%.0f', sold),
    'added', string.format('%.0f', added))
  -- SADD in slices: unpack() of a long ARGV would overflow Lua's C stack.
  for i = 5, #ARGV, 1000 do
    redis.call('SADD', KEYS[2], unpack(ARGV, i, math.min(i + 999, #ARGV)))
  end
  return {available, redis.call('SCARD', KEYS[2])}
elseif mode == 'reservation' then
  local state, qty = ARGV[2], count(ARGV[3])
  if state ~= 'RESERVED' and state ~= 'REJECTED' and state ~= 'COMMITTED' and
      state ~= 'RELEASED' then
    return redis.error_reply('ERR orderd: bad state')
  end
  if not qty then
    return redis.error_reply('ERR orderd: bad number')
  end
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[1], 'state', state, 'qty', qty, 'order', ARGV[4])
  local keep = count(ARGV[5]) or 0
  if keep > 0 and state ~= 'RESERVED' then
    redis.call('HSET', KEYS[1], 'expires', 1)
    redis.call('PEXPIRE', KEYS[1], keep)
  end
  return {ok = state}
elseif mode == 'drop' then
  return redis.call('DEL', unpack(KEYS))
end
return redis.error_reply('ERR orderd: bad mode')
