-- Apply one transition if nobody else did first (compare-and-set on the version).
-- KEYS: 1 job hash, 2 trace stream, 3 result key, 4 running zset, 5 celery meta key (or ''),
--       6 the tenant's in-flight zset (admission control)
-- ARGV: 1 expected version, 2 new state json, 3 result json ('' if not final),
--       4 ttl seconds, 5 job id, 6 celery meta json ('' if none), 7.. trace events
local v = redis.call('HGET', KEYS[1], 'version')
if v ~= ARGV[1] then
  return 0
end
redis.call('HSET', KEYS[1], 'state', ARGV[2], 'version', tonumber(ARGV[1]) + 1)
for i = 7, #ARGV do
  redis.call('XADD', KEYS[2], '*', 'event', ARGV[i])
end
if ARGV[3] ~= '' then
  local ttl = tonumber(ARGV[4])
  redis.call('SET', KEYS[3], ARGV[3], 'EX', ttl, 'NX')
  redis.call('ZREM', KEYS[4], ARGV[5])
  redis.call('ZREM', KEYS[6], ARGV[5])
  redis.call('EXPIRE', KEYS[1], ttl)
  redis.call('EXPIRE', KEYS[2], ttl)
  if ARGV[6] ~= '' then
    redis.call('SET', KEYS[5], ARGV[6], 'EX', ttl)
    redis.call('PUBLISH', KEYS[5], ARGV[6])  -- Celery's Redis backend waits on this channel
  end
end
return 1
