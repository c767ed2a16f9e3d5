-- Shared by every script of the session store (prepended to each).
-- Conventions: KEYS[1] is the expiry index (every session hash scored by its
-- expires_at), ARGV[1] the key prefix. Times are milliseconds since the Unix
-- epoch, passed as decimal strings: the engine's clock decides expiry, so
-- scripts compare against the `now` they are given, never Redis's TIME.
-- Keys of sessions and users are built from the prefix as in keys.rs: the
-- store is for a standalone server (or one Valkey/Redis primary), not Cluster.
-- Work on one user's indexes is bounded by what a call changes (trims,
-- evicts, ends), never by how many sessions the user has.

local prefix = ARGV[1]

local function session_key(member)
  return prefix .. 's:' .. member
end

-- A user's two indexes (see keys.rs): the user's session hashes scored by
-- expiry ('ue:'), and the same scored by creation ('uc:'), both named by the
-- hex of the user id, so that no user id can make one key another key's.
-- Both hold every live session; 'uc:' may hold a few more that the
-- manager's clock has not yet seen expire (it is trimmed with the other).
local function user_keys(user)
  local h = user:gsub('.', function(c)
    return string.format('%02x', c:byte())
  end)
  return prefix .. 'ue:' .. h, prefix .. 'uc:' .. h
end

-- Appends session `m`'s member and its fields u, d, v, c, a, e, i, s, x to
-- `out` (10 values), if its hash is there: how reading scripts answer.
local function append_session(out, m)
  local f = redis.call('HMGET', session_key(m), 'u', 'd', 'v', 'c', 'a', 'e', 'i', 's', 'x')
  if f[1] then
    out[#out + 1] = m
    for j = 1, 9 do
      out[#out + 1] = f[j]
    end
  end
end

-- Removes a session hash from its user's indexes.
local function forget_in_user(user, member)
  local ue, uc = user_keys(user)
  redis.call('ZREM', ue, member)
  redis.call('ZREM', uc, member)
end

-- A user's indexes live as long as the user's longest-lived session: their
-- TTL is the largest expiry, so an abandoned index disappears by itself.
local function extend_user_ttl(ue, uc)
  local top = redis.call('ZRANGE', ue, -1, -1, 'WITHSCORES')
  if top[2] then
    redis.call('PEXPIREAT', ue, top[2])
    redis.call('PEXPIREAT', uc, top[2])
  end
end

-- The index a store of the first layout kept for `user` ('u:' and the raw
-- id), if it is still there: its live sessions, each {member, created_at,
-- expires_at}. Such indexes expire with their last session.
local function first_layout_sessions(user, now)
  local old = prefix .. 'u:' .. user
  if redis.call('TYPE', old).ok ~= 'zset' then
    return nil, old
  end
  local live = {}
  for _, m in ipairs(redis.call('ZRANGEBYSCORE', old, '(' .. now, '+inf')) do
    local f = redis.call('HMGET', session_key(m), 'u', 'c', 'e')
    if f[1] == user and tonumber(f[3]) > tonumber(now) then
      live[#live + 1] = { m, f[2], f[3] }
    end
  end
  return live, old
end

-- Moves the sessions of a first-layout index into the user's indexes and
-- deletes it, before any write that needs the user's sessions complete.
local function adopt_first_layout(user, ue, uc, now)
  local live, old = first_layout_sessions(user, now)
  if not live then
    return
  end
  for _, s in ipairs(live) do
    redis.call('ZADD', ue, s[3], s[1])
    redis.call('ZADD', uc, s[2], s[1])
  end
  redis.call('DEL', old)
  extend_user_ttl(ue, uc)
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
        forget_in_user(f[1], m)
        removed = removed + 1
      end
      redis.call('ZREM', KEYS[1], m)
    end
  end
  return removed, #members
end

-- Trims a user's indexes of the sessions expired at `now`, on every write
-- to them, so they never outgrow the user's live sessions for long. Their
-- records go too (Redis has removed them already unless the manager's clock
-- runs ahead of its own), so no record is ever left that its user's indexes
-- have forgotten.
local function trim_user(ue, uc, now)
  for _, m in ipairs(redis.call('ZRANGEBYSCORE', ue, '-inf', now)) do
    local skey = session_key(m)
    local e = redis.call('HGET', skey, 'e')
    if not e then
      redis.call('ZREM', KEYS[1], m)
      redis.call('ZREM', uc, m)
    elseif tonumber(e) <= tonumber(now) then
      redis.call('DEL', skey)
      redis.call('ZREM', KEYS[1], m)
      redis.call('ZREM', uc, m)
    end
  end
  redis.call('ZREMRANGEBYSCORE', ue, '-inf', now)
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
    local ue, uc = user_keys(user)
    trim_user(ue, uc, now)
    redis.call('ZADD', ue, e, member)
    extend_user_ttl(ue, uc)
    redis.call('ZADD', KEYS[1], e, member)
  end
end

