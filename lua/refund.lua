-- Gives back (part of) a charge: the plan counter and the top-up grants it
-- drew from, never below zero; and frees the request's idempotency key so a
-- retry is charged again — only while this request's claim holds it. A
-- counter whose cycle is over (expired key) is left alone: there is nothing
-- to give back to.
--
-- A refund with an id is applied once: its marker is set in the same step,
-- so replaying it (after a timeout whose outcome was unknown, or from the
-- outage journal) gives nothing back twice.
--
-- KEYS[1]            the idempotency record to free (unused when ARGV[1] is "")
-- KEYS[2]            this refund's applied-once marker (unused when ARGV[2] is "")
-- KEYS[3]            the account's live idempotency records (zset key -> expiry), for DELETE
-- per pool i: KEYS[2i+2] used counter, KEYS[2i+3] grants hash
--
-- ARGV[1]            the claim whose key to free; "" for none
-- ARGV[2]            the refund id; "" for none
-- ARGV[3]            how long the marker is kept (ms)
-- ARGV[4]            now (epoch ms)
-- then per pool, in order: planDelta (credits to take off the counter;
-- negative puts released capacity back), drawCount, (grantId, amount)...
--
-- Returns 1 when applied, 0 when the refund id was applied before.

-- Grants are written with integer formatting, never cjson.encode: cjson keeps
-- 14 significant digits (%.14g), which would round an expiry after the year
-- 5138 (and amounts above 10^14). Every field is a whole number below 2^53,
-- which Lua's doubles and %d hold exactly. The same in charge, topup, refund.
local function grantJson(g)
  return string.format('{"a":%d,"u":%d,"x":%d,"c":%d}', g.a, g.u, g.x, g.c)
end

if ARGV[2] ~= '' then
  if not redis.call('SET', KEYS[2], '1', 'NX', 'PX', ARGV[3]) then return 0 end
  local expireAt = tonumber(ARGV[4]) + tonumber(ARGV[3])
  redis.call('ZADD', KEYS[3], expireAt, KEYS[2])
  if redis.call('PEXPIRETIME', KEYS[3]) < expireAt then redis.call('PEXPIREAT', KEYS[3], string.format('%d', expireAt)) end
end
if ARGV[1] ~= '' and redis.call('HGET', KEYS[1], 'c') == ARGV[1] then redis.call('DEL', KEYS[1]) end

local at = 5
for i = 1, (#KEYS - 3) / 2 do
  local counter = KEYS[2 * i + 2]
  local grants = KEYS[2 * i + 3]
  local delta = tonumber(ARGV[at])
  local draws = tonumber(ARGV[at + 1])
  at = at + 2
  if delta ~= 0 and redis.call('EXISTS', counter) == 1 then
    local current = tonumber(redis.call('GET', counter))
    if delta > 0 then
      redis.call('DECRBY', counter, math.min(delta, current))
    else
      -- Capacity released by a request that then failed: hold it again.
      redis.call('INCRBY', counter, -delta)
    end
  end
  for _ = 1, draws do
    local id = ARGV[at]
    local amount = tonumber(ARGV[at + 1])
    at = at + 2
    local raw = redis.call('HGET', grants, id)
    if raw then
      local g = cjson.decode(raw)
      g.u = math.max(0, g.u - amount)
      redis.call('HSET', grants, id, grantJson(g))
    end
  end
end
return 1
