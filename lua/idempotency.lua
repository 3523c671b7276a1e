-- Renews or completes a request's claim on its idempotency key, only while
-- that claim still holds the key "pending": a request whose claim lapsed (and
-- whose key a retry may have claimed since) cannot touch the retry's record.
--
-- KEYS[1]  the account's live idempotency records (zset key -> expiry ms)
-- KEYS[2]  the request's idempotency record (hash: s, f, c, r)
-- ARGV[1]  "renew" (stay pending) or "complete" (done, with the response)
-- ARGV[2]  the claim
-- ARGV[3]  how long the record is kept from now (ms)
-- ARGV[4]  now (epoch ms)
-- ARGV[5]  complete: the response to keep; "" when none could be kept
--
-- Returns 1 when the claim held the key, 0 otherwise.

local state = redis.call('HMGET', KEYS[2], 's', 'c')
if state[1] ~= 'pending' or state[2] ~= ARGV[2] then return 0 end
if ARGV[1] == 'complete' then
  redis.call('HSET', KEYS[2], 's', 'done')
  if ARGV[5] ~= '' then redis.call('HSET', KEYS[2], 'r', ARGV[5]) end
end
redis.call('PEXPIRE', KEYS[2], ARGV[3])
local expireAt = tonumber(ARGV[4]) + tonumber(ARGV[3])
redis.call('ZADD', KEYS[1], expireAt, KEYS[2])
if redis.call('PEXPIRETIME', KEYS[1]) < expireAt then
  redis.call('PEXPIREAT', KEYS[1], string.format('%d', expireAt))
end
return 1
