"""The Lua scripts that make each check-and-update of ``RedisStore`` one atomic step.

Times come from Redis' ``TIME`` (scripts replicate by effect since Redis 5), so every worker
agrees on when a window, cooldown or cache entry ends whatever its own clock says. Scripts that
follow a stored id to another key build that key's name from the prefix in ``ARGV``: one Redis
(or a Sentinel pair), not Redis Cluster.
"""

from __future__ import annotations

_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""

# KEYS: keyhash:<sha256>  ARGV: prefix  ->  {record JSON, spend micro-USD} or nil
LOOKUP_KEY = """
local id = redis.call('GET', KEYS[1])
if not id then return nil end
local record = redis.call('HGET', ARGV[1] .. 'key:' .. id, 'record')
if not record then return nil end
return {record, redis.call('GET', ARGV[1] .. 'spend:' .. id) or '0'}
"""

# KEYS: key:<id>, spend:<id>, held:<id>, keys  ARGV: id, prefix  ->  1 deleted, 0 unknown
DELETE_KEY = """
local sha = redis.call('HGET', KEYS[1], 'sha256')
if not sha then return 0 end
redis.call('DEL', ARGV[2] .. 'keyhash:' .. sha, KEYS[1], KEYS[2], KEYS[3])
redis.call('SREM', KEYS[4], ARGV[1])
return 1
"""

# KEYS: rl:<bucket>  ARGV: amount, limit, window ms  ->  {allowed, used, ms to reset}
HIT = """
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then ttl = tonumber(ARGV[3]) end
if used + tonumber(ARGV[1]) > tonumber(ARGV[2]) then return {0, used, ttl} end
used = redis.call('INCRBY', KEYS[1], ARGV[1])
if redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[3]) end
return {1, used, ttl}
"""

# KEYS: spend:<id>, held:<id>  ARGV: amount, budget (micro-USD), hold ttl ms  ->  1 held, 0 no
RESERVE = """
local spent = tonumber(redis.call('GET', KEYS[1]) or '0')
local held = tonumber(redis.call('GET', KEYS[2]) or '0')
if spent + held + tonumber(ARGV[1]) > tonumber(ARGV[2]) then return 0 end
redis.call('INCRBY', KEYS[2], ARGV[1])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return 1
"""

# KEYS: spend:<id>, held:<id>  ARGV: reserved, actual (micro-USD), hold ttl ms
SETTLE = """
if redis.call('DECRBY', KEYS[2], ARGV[1]) <= 0 then
  redis.call('DEL', KEYS[2])
else
  redis.call('PEXPIRE', KEYS[2], ARGV[3])
end
return redis.call('INCRBY', KEYS[1], ARGV[2])
"""

# A version that survives a Redis restart without persistence moving backwards: seeded from the
# clock (ms) when missing, then +1 per change.
_BUMP = """
local function bump(key)
  if redis.call('EXISTS', key) == 0 then
    local t = redis.call('TIME')
    redis.call('SET', key, string.format('%d', tonumber(t[1]) * 1000))
  end
  return redis.call('INCR', key)
end
"""

# KEYS: fb:seen, fb:log, fb:version, fb:end  ARGV: decision id, record JSON, records kept
#   ->  1 added, 0 seen before. The oldest records past the cap go, and their ids leave fb:seen.
APPEND_FEEDBACK = (
    _BUMP
    + """
if redis.call('SADD', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('RPUSH', KEYS[2], ARGV[2])
redis.call('INCR', KEYS[4])
bump(KEYS[3])
while redis.call('LLEN', KEYS[2]) > tonumber(ARGV[3]) do
  local old = cjson.decode(redis.call('LPOP', KEYS[2]))
  redis.call('SREM', KEYS[1], tostring(old['decision_id']))
end
return 1
"""
)

# KEYS: fb:seen, fb:log, fb:version, fb:end, fb:epoch
CLEAR_FEEDBACK = (
    _BUMP
    + """
redis.call('DEL', KEYS[1], KEYS[2], KEYS[4])
bump(KEYS[5])
return bump(KEYS[3])
"""
)

# KEYS: fb:log, fb:end, fb:epoch  ARGV: after, limit
#   ->  {epoch, start, end, record, record, ...}  (see ``app.state.FeedbackPage``)
READ_FEEDBACK = """
local epoch = tonumber(redis.call('GET', KEYS[3]) or '0')
local stop = tonumber(redis.call('GET', KEYS[2]) or '0')
local first = stop - redis.call('LLEN', KEYS[1])
local start = math.min(math.max(tonumber(ARGV[1]), first), stop)
local out = {epoch, start, stop}
local limit = tonumber(ARGV[2])
if limit > 0 and start < stop then
  local from = start - first
  for _, record in ipairs(redis.call('LRANGE', KEYS[1], from, from + limit - 1)) do
    out[#out + 1] = record
  end
end
return out
"""

# KEYS: sem:v:<tenant> (key -> vector), sem:t:<tenant> (key by expiry)
# ARGV: key, vector bytes, ttl ms, max entries
SEMANTIC_ADD = (
    _NOW
    + """
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[3]), ARGV[1])
for _, dead in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now)) do
  redis.call('HDEL', KEYS[1], dead)
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
local extra = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[4])
if extra > 0 then
  for _, old in ipairs(redis.call('ZRANGE', KEYS[2], 0, extra - 1)) do
    redis.call('HDEL', KEYS[1], old)
  end
  redis.call('ZREMRANGEBYRANK', KEYS[2], 0, extra - 1)
end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return 1
"""
)

# KEYS: sem:v:<tenant>, sem:t:<tenant>  ->  {key1, vector1, key2, vector2, ...} newest first
SEMANTIC_ENTRIES = (
    _NOW
    + """
local out = {}
for _, key in ipairs(redis.call('ZREVRANGEBYSCORE', KEYS[2], '+inf', '(' .. now)) do
  local vector = redis.call('HGET', KEYS[1], key)
  if vector then
    out[#out + 1] = key
    out[#out + 1] = vector
  end
end
return out
"""
)
