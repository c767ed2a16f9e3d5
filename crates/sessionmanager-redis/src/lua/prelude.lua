-- Shared by every script of the session store (prepended to each).
-- Conventions: KEYS[1] is the expiry index of the bucket the script works
-- in ('<prefix>x:{<bucket>}'), ARGV[1] the key prefix, ARGV[2] `now`. Times
-- are milliseconds since the Unix epoch, passed as decimal strings: the
-- engine's clock decides expiry, so scripts compare against the `now` they
-- are given, never Redis's TIME.
-- Every key a script touches carries its bucket's hash tag (see keys.rs),
-- so on Redis Cluster a script runs on the one node that serves the
-- bucket. A session lives in its user's bucket, with its user's indexes;
-- a key routed to another bucket has a link there naming the user's.
-- Work on one user's indexes is bounded by what a call changes (trims,
-- evicts, ends), never by how many sessions the user has.

local prefix = ARGV[1]
-- The bucket's hash tag, '{<bucket>}', and its number.
local tag = string.sub(KEYS[1], #prefix + 3)
local expiry = KEYS[1]
-- Buckets in all (BUCKETS in keys.rs).
local BUCKETS = 1024

local function session_key(member)
  return prefix .. 's:' .. tag .. member
end

-- The session keys of `members`.
local function session_keys(members)
  local out = {}
  for _, m in ipairs(members) do
    out[#out + 1] = session_key(m)
  end
  return out
end

local function link_key(member)
  return prefix .. 'a:' .. tag .. member
end

-- Whether session `member` routes to another bucket than this one (its
-- key's first 16 bits, as SessionKey::route), so a link there names this
-- one.
local function linked_elsewhere(member)
  return tonumber(string.sub(member, 1, 4), 16) % BUCKETS ~= tonumber(string.sub(tag, 2, -2))
end

-- What the store does after the script (see `Aftermath` in buckets.rs):
-- remove the links, in their own buckets, of the members of sessions this
-- script removed (strings), and report the expired sessions it removed
-- ({member, user, created_at, expires_at}).
local unlink = {}
local function removed(member)
  if linked_elsewhere(member) then
    unlink[#unlink + 1] = member
  end
end

-- How long past its expiry Redis keeps a session's record before removing
-- it by itself (RedisConfig::KEEP_EXPIRED): until then a sweep removes it
-- and reports it expired. The engine's clock decides expiry, so a record
-- kept is dead to every reader all the same.
local KEEP_EXPIRED = 60000
local function pexpireat(skey, e)
  redis.call('PEXPIREAT', skey, tonumber(e) + KEEP_EXPIRED)
end

-- Removes the expired record of session `m` (of user `u`, created at `c`,
-- expired at `e`), to be reported.
local function drop_expired(skey, m, u, c, e)
  redis.call('DEL', skey)
  unlink[#unlink + 1] = { m, u, c, e }
end

-- The answer to a call on a key with no session here but a link: an error
-- naming the bucket where its session lives, which the store follows
-- (`NEWLINKED` for a rotation's new key). Checked before anything is written.
local function linked(member, code)
  local home = redis.call('GET', link_key(member))
  if home then
    return redis.error_reply((code or 'LINKED') .. ' ' .. home)
  end
end

-- A user's two indexes (see keys.rs): the user's session hashes scored by
-- expiry ('ue:'), and the same scored by creation ('uc:'), both named by the
-- hex of the user id, so that no user id can make one key another key's.
-- Both hold every live session; 'uc:' may hold a few more that the
-- manager's clock has not yet seen expire (it is trimmed with the other).
local function hex(text)
  return (text:gsub('.', function(c)
    return string.format('%02x', c:byte())
  end))
end

local function user_keys(user)
  local h = hex(user)
  return prefix .. 'ue:' .. tag .. h, prefix .. 'uc:' .. tag .. h
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

-- Reads every key of `keys` before the script writes anything. On Redis
-- Cluster, while a slot moves between nodes, a key a script did not
-- declare may have gone to the new node already, and a command on it fails
-- the script: reading first makes it fail before it changed anything, so
-- the store sends it again once the move is done. Elsewhere it costs one
-- EXISTS.
local function reach(keys)
  if #keys > 0 then
    redis.call('EXISTS', unpack(keys))
  end
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

-- Removes up to `limit` sessions expired at `now` from the bucket, with
-- their index entries, to be reported. Returns how many session records it
-- removed and how many entries it read (fewer than `limit`: nothing
-- expired is left).
local function sweep(now, limit)
  local members = redis.call('ZRANGEBYSCORE', expiry, '-inf', now, 'LIMIT', 0, limit)
  local count = 0
  for _, m in ipairs(members) do
    local skey = session_key(m)
    local f = redis.call('HMGET', skey, 'u', 'e', 'c')
    if f[1] and tonumber(f[2]) > tonumber(now) then
      -- An index entry behind its record (the record was changed by hand): repair it.
      redis.call('ZADD', expiry, f[2], m)
    else
      if f[1] then
        drop_expired(skey, m, f[1], f[3], f[2])
        forget_in_user(f[1], m)
        count = count + 1
      end
      redis.call('ZREM', expiry, m)
      removed(m)
    end
  end
  return count, #members
end

-- Trims a user's indexes of the sessions expired at `now`, on every write
-- to them, so they never outgrow the user's live sessions for long. Their
-- records and expiry index entries stay for the sweep, which removes them
-- (and their links) and reports them; until then no reader sees them.
local function trim_user(ue, uc, now)
  for _, m in ipairs(redis.call('ZRANGEBYSCORE', ue, '-inf', now)) do
    local e = redis.call('HGET', session_key(m), 'e')
    if not e or tonumber(e) <= tonumber(now) then
      redis.call('ZREM', uc, m)
    end
  end
  redis.call('ZREMRANGEBYSCORE', ue, '-inf', now)
end

-- The indexes of `user`, reached and trimmed before a script that may move
-- one of the user's sessions forward writes anything.
local function prepare_user(user, now)
  local ue, uc = user_keys(user)
  reach({ ue, uc })
  trim_user(ue, uc, now)
  return ue, uc
end

-- Moves a live session's last_active and expires_at forward, never back;
-- a later expiry moves its TTL and both index scores (`ue`, `uc`, from
-- prepare_user) with it.
local function move_forward(skey, member, ue, uc, stored_a, stored_e, a, e)
  if tonumber(a) > tonumber(stored_a) then
    redis.call('HSET', skey, 'a', a)
  end
  if tonumber(e) > tonumber(stored_e) then
    redis.call('HSET', skey, 'e', e)
    pexpireat(skey, e)
    redis.call('ZADD', ue, e, member)
    extend_user_ttl(ue, uc)
    redis.call('ZADD', expiry, e, member)
  end
end

