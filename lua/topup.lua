-- Grants a top-up (add-on credits for one credit type), at most once per
-- idempotency key. Grants expired by `now` are pruned on the way.
--
-- KEYS[1]  the account's key index (set)
-- KEYS[2]  grants of the credit type: hash id -> JSON {a=amount,u=used,x=expiresAt,c=createdAt}
-- KEYS[3]  grant expiry index: zset id -> expiresAt (ms)
-- KEYS[4]  idempotency record for this key: the grant as first answered
--
-- ARGV[1]  grant id        ARGV[2]  amount        ARGV[3]  expiresAt (ms)
-- ARGV[4]  createdAt (ms)  ARGV[5]  now (ms)      ARGV[6]  "1" when an idempotency key was given
-- ARGV[7]  idempotency record lifetime (ms)       ARGV[8]  expire-at for the grant keys (ms)
--
-- ARGV[9]  the credit type (kept in the idempotency record)
--
-- Returns { created (1|0), grantJSON }: a replayed key answers with the grant
-- exactly as the first call did (the original response), whatever the replay asked.

-- Grants are written with integer formatting, never cjson.encode: cjson keeps
-- 14 significant digits (%.14g), which would round an expiry after the year
-- 5138 (and amounts above 10^14). Every field is a whole number below 2^53,
-- which Lua's doubles and %d hold exactly. The same in charge, topup, refund.
local function grantJson(g)
  return string.format('{"a":%d,"u":%d,"x":%d,"c":%d}', g.a, g.u, g.x, g.c)
end

if ARGV[6] == '1' then
  local first = redis.call('GET', KEYS[4])
  if first then return { 0, first } end
end

local expired = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', ARGV[5])
for _, id in ipairs(expired) do redis.call('HDEL', KEYS[2], id) end
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', ARGV[5])

local g = { a = tonumber(ARGV[2]), u = 0, x = tonumber(ARGV[3]), c = tonumber(ARGV[4]) }
local grant = grantJson(g)
redis.call('HSET', KEYS[2], ARGV[1], grant)
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[1])

-- The grant keys live until their last grant has expired (plus grace).
local function extend(key)
  local current = redis.call('PEXPIRETIME', key)
  if current < tonumber(ARGV[8]) then redis.call('PEXPIREAT', key, ARGV[8]) end
  redis.call('SADD', KEYS[1], key)
end
extend(KEYS[2])
extend(KEYS[3])
-- The answer: the grant with its id and credit type (strings, escaped by cjson).
local answer = '{"id":' .. cjson.encode(ARGV[1]) .. ',"t":' .. cjson.encode(ARGV[9]) .. ',' .. string.sub(grant, 2)
if ARGV[6] == '1' then
  redis.call('SET', KEYS[4], answer, 'PX', ARGV[7])
  redis.call('SADD', KEYS[1], KEYS[4])
end
local idx = redis.call('PEXPIRETIME', KEYS[1])
if idx > 0 and idx < tonumber(ARGV[8]) then redis.call('PEXPIREAT', KEYS[1], ARGV[8]) end
if idx == -2 then redis.call('PEXPIREAT', KEYS[1], ARGV[8]) end

return { 1, answer }
