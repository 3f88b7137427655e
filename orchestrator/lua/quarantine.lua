-- Quarantine a job whose stored state cannot be loaded or applied, once.
-- KEYS: 1 job key (any type), 2 result key, 3 running zset, 4 trace stream, 5 dlq stream,
--       6 celery meta key (or 'unused'), 7 the tenant's in-flight zset
-- ARGV: 1 job id, 2 result json, 3 ttl seconds, 4 trace event json, 5 celery meta json
--       ('' if none), 6.. dead-letter fields (name, value, ...)
-- The first caller writes the failed result, the dead letter (which keeps the raw record)
-- and the trace event, and removes the job from the running set; a second caller (another
-- replica, a redelivered event) finds the result already there and changes nothing.
local ttl = tonumber(ARGV[3])
if not redis.call('SET', KEYS[2], ARGV[2], 'NX', 'EX', ttl) then
  redis.call('ZREM', KEYS[3], ARGV[1])
  redis.call('ZREM', KEYS[7], ARGV[1])
  redis.call('DEL', KEYS[1])
  return 0
end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('ZREM', KEYS[7], ARGV[1])
redis.call('XADD', KEYS[4], '*', 'event', ARGV[4])
redis.call('EXPIRE', KEYS[4], ttl)
local fields = {}
for i = 6, #ARGV do
  fields[#fields + 1] = ARGV[i]
end
redis.call('XADD', KEYS[5], '*', unpack(fields))
if ARGV[5] ~= '' then
  redis.call('SET', KEYS[6], ARGV[5], 'EX', ttl)
  redis.call('PUBLISH', KEYS[6], ARGV[5])
end
return 1
