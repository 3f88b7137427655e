-- Create a job once per idempotency key, atomically.
-- KEYS: 1 idempotency key, 2 job hash, 3 events stream, 4 running zset, 5 trace stream
-- ARGV: 1 job id, 2 state json, 3 submitted event json, 4 deadline, 5 trace event json, 6 ttl,
--       7 tenant, 8 request fingerprint, 9 reply task id ('' if none)
-- tenant, fingerprint and reply task id are plain fields beside the state, so ownership and
-- an idempotency conflict are decided without parsing the state (which may be unreadable).
local existing = redis.call('GET', KEYS[1])
if existing then
  return {existing, 0}
end
redis.call('SET', KEYS[1], ARGV[1], 'EX', tonumber(ARGV[6]))
redis.call('HSET', KEYS[2], 'state', ARGV[2], 'version', 0, 'tenant', ARGV[7], 'fp', ARGV[8],
           'reply', ARGV[9])
redis.call('ZADD', KEYS[4], tonumber(ARGV[4]), ARGV[1])
redis.call('XADD', KEYS[5], '*', 'event', ARGV[5])
redis.call('XADD', KEYS[3], '*', 'event', ARGV[3])
return {ARGV[1], 1}
