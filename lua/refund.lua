-- Gives back (part of) a charge: the plan counter and the top-up grants it
-- drew from, never below zero; and frees the request's idempotency key so a
-- retry is charged again — only while this request's claim holds it. A
-- counter whose cycle is over (expired key) is left alone: there is nothing
-- to give back to.
--
-- KEYS[1]            the idempotency record to free (unused when ARGV[1] is "")
-- per pool i: KEYS[2i] used counter, KEYS[2i+1] grants hash
--
-- ARGV[1]            the claim whose key to free; "" for none
-- then per pool, in order: planDelta (credits to take off the counter;
-- negative puts released capacity back), drawCount, (grantId, amount)...

-- Grants are written with integer formatting, never cjson.encode: cjson keeps
-- 14 significant digits (%.14g), which would round an expiry after the year
-- 5138 (and amounts above 10^14). Every field is a whole number below 2^53,
-- which Lua's doubles and %d hold exactly. The same in charge, topup, refund.
local function grantJson(g)
  return string.format('{"a":%d,"u":%d,"x":%d,"c":%d}', g.a, g.u, g.x, g.c)
end

if ARGV[1] ~= '' and redis.call('HGET', KEYS[1], 'c') == ARGV[1] then redis.call('DEL', KEYS[1]) end

local at = 2
for i = 1, (#KEYS - 1) / 2 do
  local counter = KEYS[2 * i]
  local grants = KEYS[2 * i + 1]
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
