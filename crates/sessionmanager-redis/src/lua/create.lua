-- Stores a new session unless a live one holds the key, enforcing the user's
-- limit in the same step. KEYS: expiry index, session, user index.
-- ARGV: prefix, now, member, user, data, version, created_at, last_active,
-- expires_at, idle_timeout_ms, sliding (1/0), absolute deadline or '',
-- max sessions per user (0: no limit), evict oldest (1/0), sweep batch.
-- Returns how many sessions it evicted, -1 if the key is taken, -2 if the
-- user is at a limit that refuses.
local now = tonumber(ARGV[2])
local member = ARGV[3]
local old = redis.call('HMGET', KEYS[2], 'u', 'e')
if old[1] then
  if tonumber(old[2]) > now then
    return -1
  end
  -- An expired record is as good as absent: its owner's index forgets it.
  redis.call('ZREM', user_key(old[1]), member)
  redis.call('DEL', KEYS[2])
end
trim_user(KEYS[3], ARGV[2])
local evicted = 0
local max = tonumber(ARGV[13])
if max > 0 then
  local live = {}
  for _, m in ipairs(redis.call('ZRANGE', KEYS[3], 0, -1)) do
    local c = redis.call('HGET', session_key(m), 'c')
    if c then
      live[#live + 1] = {tonumber(c), m}
    else
      redis.call('ZREM', KEYS[3], m)
    end
  end
  if #live >= max then
    if ARGV[14] ~= '1' then
      return -2
    end
    -- Oldest first by created_at, then by key, as every store orders them.
    table.sort(live, function(x, y)
      if x[1] ~= y[1] then
        return x[1] < y[1]
      end
      return x[2] < y[2]
    end)
    for i = 1, #live - max + 1 do
      local m = live[i][2]
      redis.call('DEL', session_key(m))
      redis.call('ZREM', KEYS[3], m)
      redis.call('ZREM', KEYS[1], m)
      evicted = evicted + 1
    end
  end
end
redis.call('HSET', KEYS[2], 'u', ARGV[4], 'd', ARGV[5], 'v', ARGV[6], 'c', ARGV[7],
  'a', ARGV[8], 'e', ARGV[9], 'i', ARGV[10], 's', ARGV[11], 'x', ARGV[12])
redis.call('PEXPIREAT', KEYS[2], ARGV[9])
redis.call('ZADD', KEYS[3], ARGV[9], member)
extend_user_ttl(KEYS[3])
redis.call('ZADD', KEYS[1], ARGV[9], member)
-- Each create also clears a few expired entries from the expiry index, so
-- it stays bounded with no background job.
if tonumber(ARGV[15]) > 0 then
  sweep(ARGV[2], tonumber(ARGV[15]))
end
return evicted
