-- Sets one alert mark of a pool's cycle once, across every replica: the
-- caller that gets 1 sends the alert, every other gets 0. The marks hash is
-- the one charge.lua keeps thresholds in, so it expires with the cycle and
-- DELETE of the account finds it.
--
-- KEYS[1]  the account's key index (a set of every key written)
-- KEYS[2]  alert marks of the cycle: hash mark -> when it was set
-- ARGV[1]  the mark (e.g. "forecast")
-- ARGV[2]  now (epoch ms)
-- ARGV[3]  expire-at of the cycle's keys (epoch ms)

if redis.call('HSETNX', KEYS[2], ARGV[1], ARGV[2]) == 0 then return 0 end
redis.call('PEXPIREAT', KEYS[2], ARGV[3])
-- As charge.lua's index(): the index lives at least as long as what it lists.
local before = redis.call('PEXPIRETIME', KEYS[1])
redis.call('SADD', KEYS[1], KEYS[2])
if before == -2 or (before > 0 and before < tonumber(ARGV[3])) then
  redis.call('PEXPIREAT', KEYS[1], ARGV[3])
end
return 1
