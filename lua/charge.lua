-- All-or-nothing charge of several credit pools of one account, in one round
-- trip: plan allowance first, then top-up grants (earliest expiry first);
-- capacity releases; threshold alerts decided in the same atomic step.
-- Every key shares the account's hash tag, so this runs on one Cluster slot.
--
-- KEYS[1]            the account's key index (a set of every key written)
-- KEYS[2]            the idempotency record of this request, a hash: s = state
--                    ("pending" | "done"), f = fingerprint, c = the claim that
--                    holds it, r = the first response (unused without a key)
-- KEYS[3]            the account's live idempotency records (zset key -> expiry)
-- per pool i (base b = 3 + 4(i-1)):
--   KEYS[b+1]        used-from-plan counter for the cycle (or for all time: capacity)
--   KEYS[b+2]        grants of the credit type: hash id -> JSON {a=amount,u=used,x=expiresAt,c=createdAt}
--   KEYS[b+3]        grant expiry index: zset id -> expiresAt (ms)
--   KEYS[b+4]        alert marks of the cycle: hash threshold -> 1
--
-- ARGV[1]            now (epoch ms)
-- ARGV[2]            the request's fingerprint when it carries an idempotency key
--                    (KEYS[2]); "" without one
-- ARGV[3]            how long a claimed key stays "pending" unless renewed (ms)
-- ARGV[4]            the claim: who holds the key once claimed
-- ARGV[5]            m, the number of alert thresholds; ARGV[6..5+m] the thresholds (fractions)
-- per pool i (base c = 5 + m + 7(i-1)):
--   ARGV[c+1]        op: "c" charge, "r" release (capacity: give back, never below 0)
--   ARGV[c+2]        amount (integer >= 0)
--   ARGV[c+3]        plan limit this cycle; -1 = unlimited; 0 = not in the plan
--                    (grants only; refused, even for 0, without an active grant)
--   ARGV[c+4]        expire-at of the cycle's keys (epoch ms); 0 = never
--   ARGV[c+5]        "1" if top-ups and alerts apply to this pool (consumables), else "0"
--   ARGV[c+6]        "1" in shadow mode: never refuse; what does not fit is still
--                    counted (as plan usage beyond the limit) and reported
--   ARGV[c+7]        the least amount that will do (a hold takes what remains
--                    down to this); equal to the amount for a plain charge
--
-- Returns { 2, state, fingerprint, response or nil } when the idempotency key
-- was already claimed (state: "pending" while the first request runs, "done"
-- after it), charging nothing: the caller compares fingerprints.
-- Otherwise { ok, pool_1 ..., pool_n } flattened, each pool as
--   planUsed, grantTotal, grantUsed, flags, charged, planDelta, firedCount, fired...,
--   drawCount, (grantId, amount)...
-- charged: the amount taken (less than asked for a hold that took what remained);
-- planDelta: how the plan counter moved (negative for a release).
-- flags: 1 = shadow pool that would have been refused, 2 = this charge emptied
-- the pool (first time this cycle). ok = 1: the counts after the charge;
-- ok = 0: as found, nothing written.

-- Grants are written with integer formatting, never cjson.encode: cjson keeps
-- 14 significant digits (%.14g), which would round an expiry after the year
-- 5138 (and amounts above 10^14). Every field is a whole number below 2^53,
-- which Lua's doubles and %d hold exactly. The same in charge, topup, refund.
local function grantJson(g)
  return string.format('{"a":%d,"u":%d,"x":%d,"c":%d}', g.a, g.u, g.x, g.c)
end

-- Appends a pool's part of the reply to out, whose last index is k; returns
-- the new last index.
local function encode(out, k, planUsed, grantTotal, grantUsed, flags, charged, planDelta, fired, firedCount, draws, drawCount)
  out[k + 1] = planUsed
  out[k + 2] = grantTotal
  out[k + 3] = grantUsed
  out[k + 4] = flags
  out[k + 5] = charged
  out[k + 6] = planDelta
  out[k + 7] = firedCount
  k = k + 7
  for j = 1, firedCount do out[k + j] = fired[j] end
  k = k + firedCount + 1
  out[k] = drawCount
  for j = 1, 2 * drawCount, 2 do
    out[k + j] = draws[j].id
    out[k + j + 1] = draws[j + 1]
  end
  return k + 2 * drawCount
end

-- Adds a key written for the first time to the account's key index (see pass 2).
-- These functions come before the local aliases below, and so use globals:
-- a function that captures locals costs an upvalue each on every call.
local function index(key, expireAt)
  local before = redis.call('PEXPIRETIME', KEYS[1])
  redis.call('SADD', KEYS[1], key)
  if expireAt == '0' then
    redis.call('PERSIST', KEYS[1])
  elseif before == -2 or (before > 0 and before < tonumber(expireAt)) then
    redis.call('PEXPIREAT', KEYS[1], expireAt)
  end
end

-- This runs once per charged request, so it minds Redis's CPU (measured with
-- redis-benchmark and INFO commandstats): a pool's plan from pass 1 is kept in
-- a small array, not a table of named fields; lists (grants, draws, fired
-- alerts) are made only when a pool has some and are filled by index, not
-- table.insert; redis.call gets strings from ARGV where one will do, since a
-- Lua number given to redis.call, or joined to a string, is formatted with
-- snprintf. A pool without grants, alerts or idempotency key costs GET,
-- ZRANGEBYSCORE, INCRBY and PEXPIREAT (and the key index on its first write).
local call, tonumber, KEYS, ARGV = redis.call, tonumber, KEYS, ARGV
local min, max = math.min, math.max
local now = tonumber(ARGV[1])
local fingerprint = ARGV[2]
local idempotent = fingerprint ~= ''
local m = tonumber(ARGV[5])
local n = (#KEYS - 3) / 4

-- A repeated idempotency key is decided before anything is read or written:
-- the same request is never charged twice, even while the first is in flight.
if idempotent then
  local seen = call('HMGET', KEYS[2], 's', 'f', 'r')
  if seen[1] then return { 2, seen[1], seen[2] or '', seen[3] } end
end

-- pools[i] = { planUsed, exists, grants, grantCount, grantTotal, grantUsed,
--              fromPlan, charged, wouldRefuse, draws, drawCount, amount, limit }
-- (amount and limit as numbers, parsed once)
-- grants: { {id=, a=, u=, x=, c=}, ... }, earliest expiry first;
-- draws: { grant, amount, grant, amount, ... }, drawCount pairs; either is
-- nil while its count is 0 (so is a pool's list of fired alerts).
local pools = {}
local fits = true

-- Pass 1: read everything and plan each pool's draw; write nothing.
for i = 1, n do
  local b = 3 + 4 * (i - 1)
  local c = 5 + m + 7 * (i - 1)
  local amount = tonumber(ARGV[c + 2])
  local limit = tonumber(ARGV[c + 3])
  local planUsed, exists = 0, false
  local grants, grantCount, grantTotal, grantUsed = nil, 0, 0, 0
  local fromPlan, charged, wouldRefuse, draws, drawCount = 0, 0, false, nil, 0
  local raw = call('GET', KEYS[b + 1])
  if raw then
    planUsed = tonumber(raw)
    exists = true
  end
  if ARGV[c + 5] == '1' then
    -- Active grants only (expiry strictly after now), earliest expiry first.
    -- ('(' .. ARGV[1] is '(' .. now for the integer ms the caller sends.)
    -- No EXISTS shortcut for a pool without grants: one call either way.
    local ids = call('ZRANGEBYSCORE', KEYS[b + 3], '(' .. ARGV[1], '+inf')
    if ids[1] then
      grants = {}
      for j = 1, #ids do
        local id = ids[j]
        local raw = call('HGET', KEYS[b + 2], id)
        if raw then
          local g = cjson.decode(raw)
          g.id = id
          grantCount = grantCount + 1
          grants[grantCount] = g
          grantTotal = grantTotal + g.a
          grantUsed = grantUsed + g.u
        end
      end
    end
  end
  if ARGV[c + 1] == 'c' then
    charged = amount
    if limit < 0 then
      fromPlan = amount
    else
      local room = max(0, limit - planUsed)
      fromPlan = min(amount, room)
      local rest = amount - fromPlan
      if rest > 0 and grantCount > 0 then
        draws = {}
        for j = 1, grantCount do
          if rest == 0 then break end
          local g = grants[j]
          local take = min(rest, g.a - g.u)
          if take > 0 then
            draws[2 * drawCount + 1] = g
            draws[2 * drawCount + 2] = take
            drawCount = drawCount + 1
            rest = rest - take
          end
        end
      end
      -- Limit 0 is a pool outside the plan: only grants fill it, and
      -- without an active grant it refuses any charge, even of 0.
      local notInPlan = limit == 0 and grantCount == 0
      if rest > 0 or notInPlan then
        local minAmount = tonumber(ARGV[c + 7])
        if ARGV[c + 6] == '1' then -- shadow
          fromPlan = fromPlan + rest
          wouldRefuse = true
        elseif not notInPlan and amount - rest >= minAmount and minAmount < amount then
          charged = amount - rest
        else
          fits = false
        end
      end
    end
  end
  pools[i] = { planUsed, exists, grants, grantCount, grantTotal, grantUsed, fromPlan, charged, wouldRefuse, draws, drawCount, amount, limit }
end

if not fits then
  local out, k = { 0 }, 1
  for i = 1, n do
    local p = pools[i]
    k = encode(out, k, p[1], p[5], p[6], 0, 0, 0, nil, 0, nil, 0)
  end
  return out
end

-- Pass 2: apply. Counters get their expiry on every write; a key written
-- for the first time joins the account's key index, which is how DELETE
-- finds an account's keys without a SCAN. The index lives as long as its
-- longest-lived key (forever once it holds a capacity counter).
-- Claimed only when the charge succeeds: a refused request leaves the key
-- free for a retry; a refund releases it again (refund.lua). Listed with its
-- expiry, so that DELETE of the account finds it; expired entries are pruned
-- here, so the list holds live records only.
if idempotent then
  local expireAt = now + tonumber(ARGV[3])
  call('HSET', KEYS[2], 's', 'pending', 'f', fingerprint, 'c', ARGV[4])
  call('PEXPIRE', KEYS[2], ARGV[3])
  call('ZADD', KEYS[3], expireAt, KEYS[2])
  call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
  if call('PEXPIRETIME', KEYS[3]) < expireAt then call('PEXPIREAT', KEYS[3], string.format('%d', expireAt)) end
end

local out, k = nil, 1 -- made only for a reply that needs growing
for i = 1, n do
  local b = 3 + 4 * (i - 1)
  local c = 5 + m + 7 * (i - 1)
  local planUsed, exists, grants, grantCount, grantTotal, grantUsed, fromPlan, charged, wouldRefuse, draws, drawCount, amount, limit =
    unpack(pools[i], 1, 13)
  local planDelta, emptied, fired, firedCount = 0, false, nil, 0
  if ARGV[c + 1] == 'r' then
    local give = min(amount, planUsed)
    charged = give
    if give > 0 then
      planUsed = call('DECRBY', KEYS[b + 1], give)
      planDelta = -give
    end
  else
    local expireAt = ARGV[c + 4]
    if fromPlan > 0 then
      -- The amount as the caller wrote it when all of it comes from the plan
      -- (the common case), which spares formatting the number.
      planUsed = call('INCRBY', KEYS[b + 1], fromPlan == amount and ARGV[c + 2] or fromPlan)
      planDelta = fromPlan
      if expireAt ~= '0' then call('PEXPIREAT', KEYS[b + 1], expireAt) end
      if not exists then index(KEYS[b + 1], expireAt) end
    end
    for j = 1, 2 * drawCount, 2 do
      local g, take = draws[j], draws[j + 1]
      g.u = g.u + take
      grantUsed = grantUsed + take
      call('HSET', KEYS[b + 2], g.id, grantJson(g))
    end
    -- Alerts: a threshold fires the first time usage reaches it in a cycle,
    -- however many requests reach it at once and whatever the allowance did.
    if ARGV[c + 5] == '1' and limit >= 0 then
      local allowance = limit + grantTotal
      local used = planUsed + grantUsed
      if allowance > 0 then
        local marked = false
        for t = 1, m do
          local threshold = ARGV[5 + t]
          if used >= tonumber(threshold) * allowance and call('HSETNX', KEYS[b + 4], threshold, now) == 1 then
            if firedCount == 0 then fired = {} end
            firedCount = firedCount + 1
            fired[firedCount] = threshold
            marked = true
          end
        end
        -- "emptied" is tracked apart from the configured thresholds: it feeds
        -- the accounts-exhausted gauge whatever alerts are configured.
        if used >= allowance and call('HSETNX', KEYS[b + 4], 'empty', now) == 1 then
          emptied = true
          marked = true
        end
        if marked then
          call('PEXPIREAT', KEYS[b + 4], expireAt)
          index(KEYS[b + 4], expireAt)
        end
      end
    end
  end
  local flags = (wouldRefuse and 1 or 0) + (emptied and 2 or 0)
  if n == 1 and firedCount == 0 and drawCount == 0 then
    -- The common reply, one pool with nothing fired or drawn, made in one
    -- constructor: cheaper than growing the table field by field.
    return { 1, planUsed, grantTotal, grantUsed, flags, charged, planDelta, 0, 0 }
  end
  out = out or { 1 }
  k = encode(out, k, planUsed, grantTotal, grantUsed, flags, charged, planDelta, fired, firedCount, draws, drawCount)
end
return out or { 1 } -- { 1 } alone when there is no pool (a request that only claims its key)
