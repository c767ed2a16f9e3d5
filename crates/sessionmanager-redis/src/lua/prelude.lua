-- Shared by every script of the session store (prepended to each).
-- Conventions: KEYS[1] is the expiry index (every session hash scored by its
-- expires_at), ARGV[1] the key prefix. Times are milliseconds since the Unix
-- epoch, passed as decimal strings: the engine's clock decides expiry, so
-- scripts compare against the `now` they are given, never Redis's TIME.
-- Keys of sessions and users are built from the prefix as in keys.rs: the
-- store is for a standalone server (or one Valkey/Redis primary), not Cluster.

local prefix = ARGV[1]

local function session_key(member)
  return prefix .. 's:' .. member
end

local function user_key(user)
  return prefix .. 'u:' .. user
end

-- A user index lives as long as its longest-lived session: its own TTL is the
-- largest score, so an abandoned index disappears by itself.
local function extend_user_ttl(ukey)
  local top = redis.call('ZRANGE', ukey, -1, -1, 'WITHSCORES')
  if top[2] then
    redis.call('PEXPIREAT', ukey, top[2])
  end
end

-- Removes up to `limit` sessions expired at `now`, with their index entries.
-- Returns how many session records it removed and how many entries it read
-- (fewer than `limit`: nothing expired is left).
local function sweep(now, limit)
  local members = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, limit)
  local removed = 0
  for _, m in ipairs(members) do
    local skey = session_key(m)
    local f = redis.call('HMGET', skey, 'u', 'e')
    if f[1] and tonumber(f[2]) > tonumber(now) then
      -- An index entry behind its record (the record was changed by hand): repair it.
      redis.call('ZADD', KEYS[1], f[2], m)
    else
      if f[1] then
        redis.call('DEL', skey)
        redis.call('ZREM', user_key(f[1]), m)
        removed = removed + 1
      end
      redis.call('ZREM', KEYS[1], m)
    end
  end
  return removed, #members
end

-- Trims a user's index of the sessions expired at `now`, on every write to
-- it, so the index never outgrows the user's live sessions for long. Their
-- records go too (Redis has removed them already unless the manager's clock
-- runs ahead of its own), so no record is ever left that its user's index
-- has forgotten.
local function trim_user(ukey, now)
  for _, m in ipairs(redis.call('ZRANGEBYSCORE', ukey, '-inf', now)) do
    local skey = session_key(m)
    local e = redis.call('HGET', skey, 'e')
    if not e then
      redis.call('ZREM', KEYS[1], m)
    elseif tonumber(e) <= tonumber(now) then
      redis.call('DEL', skey)
      redis.call('ZREM', KEYS[1], m)
    end
  end
  redis.call('ZREMRANGEBYSCORE', ukey, '-inf', now)
end

-- Moves a live session's last_active and expires_at forward, never back;
-- a later expiry moves its TTL and both index scores with it.
local function move_forward(now, skey, member, user, stored_a, stored_e, a, e)
  if tonumber(a) > tonumber(stored_a) then
    redis.call('HSET', skey, 'a', a)
  end
  if tonumber(e) > tonumber(stored_e) then
    redis.call('HSET', skey, 'e', e)
    redis.call('PEXPIREAT', skey, e)
    local ukey = user_key(user)
    trim_user(ukey, now)
    redis.call('ZADD', ukey, e, member)
    extend_user_ttl(ukey)
    redis.call('ZADD', KEYS[1], e, member)
  end
end

