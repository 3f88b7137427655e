-- Create a job once per idempotency key, atomically, unless admission control refuses it.
-- KEYS: 1 idempotency key, 2 job hash, 3 events stream, 4 running zset, 5 trace stream,
--       6 the tenant's in-flight zset, 7.. stage queues with a depth limit (Celery lists)
-- ARGV: 1 job id, 2 state json, 3 submitted event json, 4 deadline, 5 trace event json, 6 ttl,
--       7 tenant, 8 request fingerprint, 9 reply task id ('' if none), 10 now,
--       11 tenant in-flight limit (-1: none), 12 stale grace seconds,
--       13.. depth limit of each queue in KEYS 7..
-- Returns {job id, 1} created, {existing job id, 0} for a known idempotency key (never
-- refused: it names a job already admitted), or {'', 2, limit, subject, current, maximum}.
-- tenant, fingerprint and reply task id are plain fields beside the state, so ownership and
-- an idempotency conflict are decided without parsing the state (which may be unreadable).
local existing = redis.call('GET', KEYS[1])
if existing then
  return {existing, 0}
end
for i = 7, #KEYS do
  local depth = redis.call('LLEN', KEYS[i])
  local limit = tonumber(ARGV[i + 6])
  if depth >= limit then
    return {'', 2, 'queue_depth', KEYS[i], depth, limit}
  end
end
local tenant_limit = tonumber(ARGV[11])
if tenant_limit >= 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[6], '-inf', '(' .. (tonumber(ARGV[10]) - tonumber(ARGV[12])))
  local in_flight = redis.call('ZCARD', KEYS[6])
  if in_flight >= tenant_limit then
    return {'', 2, 'tenant_in_flight', ARGV[7], in_flight, tenant_limit}
  end
end
redis.call('SET', KEYS[1], ARGV[1], 'EX', tonumber(ARGV[6]))
redis.call('HSET', KEYS[2], 'state', ARGV[2], 'version', 0, 'tenant', ARGV[7], 'fp', ARGV[8],
           'reply', ARGV[9])
redis.call('ZADD', KEYS[4], tonumber(ARGV[4]), ARGV[1])
redis.call('ZADD', KEYS[6], tonumber(ARGV[4]), ARGV[1])
redis.call('XADD', KEYS[5], '*', 'event', ARGV[5])
redis.call('XADD', KEYS[3], '*', 'event', ARGV[3])
return {ARGV[1], 1}
