-- Stores a new session unless a live one holds the key, enforcing the user's
-- limit in the same step, in the user's bucket. KEYS: expiry index,
-- session, the user's index by expiry, the user's index by creation. ARGV:
-- prefix, now, member, user, data, version, created_at, last_active,
-- expires_at, idle_timeout_ms, sliding (1/0), absolute deadline or '', max
-- sessions per user (0: no limit), evict oldest (1/0), sweep batch.
-- Returns {sessions evicted, -1 if the key is taken or -2 if the user is at
-- a limit that refuses; then what the store does after (see `unlink` in the
-- prelude)}.
-- How many of a refusing user's oldest sessions are checked for records
-- that vanished behind the store's back, at most.
local REFUSE_CHECKS = 16
local now = tonumber(ARGV[2])
local member = ARGV[3]
local ue, uc = KEYS[3], KEYS[4]
local old = redis.call('HMGET', KEYS[2], 'u', 'e', 'c')
if not old[1] then
  -- A key that routes here may be linked to another user's bucket.
  local link = linked(member)
  if link then
    return link
  end
elseif tonumber(old[2]) > now then
  return { -1 }
end
-- Each create clears a few expired entries from the expiry index, so it
-- stays bounded with no background job; before anything else it writes
-- (it only cleans up, so a create that then fails changed nothing that
-- matters), and after the looks above, whose answers carry no report.
if tonumber(ARGV[15]) > 0 then
  sweep(ARGV[2], tonumber(ARGV[15]))
end
if old[1] and redis.call('EXISTS', KEYS[2]) == 1 then
  -- An expired record (the sweep left it) is as good as absent: its
  -- owner's indexes forget it.
  reach({ user_keys(old[1]) })
  forget_in_user(old[1], member)
  drop_expired(KEYS[2], member, old[1], old[3], old[2])
end
local evicted = 0
local max = tonumber(ARGV[13])
if max > 0 then
  trim_user(ue, uc, ARGV[2])
  -- Every session left in the index is live by the manager's clock; one
  -- whose record vanished behind the store's back (a DEL by hand, an
  -- eviction under maxmemory) is dropped where the walk below meets it.
  local count = redis.call('ZCARD', uc)
  local function drop(m)
    redis.call('ZREM', ue, m)
    redis.call('ZREM', uc, m)
    redis.call('ZREM', expiry, m)
    removed(m)
    count = count - 1
  end
  if ARGV[14] == '1' then
    -- Oldest first by created_at, then by key, as every store orders them:
    -- exactly as many as must go.
    while count >= max do
      local oldest = redis.call('ZRANGE', uc, 0, count - max)
      if #oldest == 0 then
        break
      end
      reach(session_keys(oldest))
      for _, m in ipairs(oldest) do
        if redis.call('DEL', session_key(m)) == 1 then
          evicted = evicted + 1
        end
        drop(m)
      end
    end
  else
    -- Refusing: the oldest few are checked for vanished records, so a
    -- session deleted by hand among them frees its place at once.
    local checked = 0
    while count >= max and checked < REFUSE_CHECKS do
      local m = redis.call('ZRANGE', uc, checked, checked)[1]
      if not m then
        break
      end
      if redis.call('EXISTS', session_key(m)) == 0 then
        drop(m)
      else
        checked = checked + 1
      end
    end
    if count >= max then
      table.insert(unlink, 1, -2)
      return unlink
    end
  end
else
  trim_user(ue, uc, ARGV[2])
end
redis.call('HSET', KEYS[2], 'u', ARGV[4], 'd', ARGV[5], 'v', ARGV[6], 'c', ARGV[7],
  'a', ARGV[8], 'e', ARGV[9], 'i', ARGV[10], 's', ARGV[11], 'x', ARGV[12])
pexpireat(KEYS[2], ARGV[9])
redis.call('ZADD', ue, ARGV[9], member)
redis.call('ZADD', uc, ARGV[7], member)
extend_user_ttl(ue, uc)
redis.call('ZADD', expiry, ARGV[9], member)
table.insert(unlink, 1, evicted)
return unlink
