-- Imports sessions as SessionStore::import does, many per call (for
-- migrations): a free key (or one holding an expired record) gets the
-- session as create stores one without a user limit; a live copy with a
-- lower version is overwritten, one with the same version moves its times
-- forward; a copy as new or newer stays. KEYS: the expiry index of the
-- first session's bucket. ARGV: prefix, now, then per session its member,
-- its user's bucket tag, its user's index by expiry and by creation (named
-- by the caller, as keys.rs does), and the fields u, d, v, c, a, e, i, s, x.
-- On Redis Cluster every session of a call is in one bucket; a standalone
-- server takes any. Returns per session 1 created, 2 updated, 3 unchanged,
-- 4 when the key holds another user's session, or 5 when it routes to
-- this bucket and a link here names another (nothing written for either).
local now = tonumber(ARGV[2])
local out = {}
local indexes = {}
for i = 3, #ARGV, 13 do
  tag = ARGV[i + 1]
  reach({ session_key(ARGV[i]), ARGV[i + 2], ARGV[i + 3] })
end
for i = 3, #ARGV, 13 do
  local member, ue, uc = ARGV[i], ARGV[i + 2], ARGV[i + 3]
  tag, expiry = ARGV[i + 1], prefix .. 'x:' .. ARGV[i + 1]
  -- The fields, as they were before the bucket's tag came first.
  local j = i + 1
  local user, c, a, e = ARGV[j + 3], ARGV[j + 6], ARGV[j + 7], ARGV[j + 8]
  local skey = session_key(member)
  local old = redis.call('HMGET', skey, 'u', 'e', 'v', 'a')
  if old[1] and tonumber(old[2]) > now then
    local version, stored_version = tonumber(ARGV[j + 5]), tonumber(old[3])
    if old[1] ~= user then
      out[#out + 1] = 4
    elseif version > stored_version then
      trim_user(ue, uc, ARGV[2])
      redis.call('HSET', skey, 'd', ARGV[j + 4], 'v', ARGV[j + 5])
      move_forward(skey, member, ue, uc, old[4], old[2], a, e)
      out[#out + 1] = 2
    elseif version == stored_version and tonumber(e) > tonumber(old[2]) then
      trim_user(ue, uc, ARGV[2])
      move_forward(skey, member, ue, uc, old[4], old[2], a, e)
      out[#out + 1] = 2
    else
      out[#out + 1] = 3
    end
  elseif not old[1] and redis.call('EXISTS', link_key(member)) == 1 then
    out[#out + 1] = 5
  else
    if old[1] then
      forget_in_user(old[1], member)
      redis.call('DEL', skey)
    end
    redis.call('HSET', skey, 'u', user, 'd', ARGV[j + 4], 'v', ARGV[j + 5], 'c', c,
      'a', a, 'e', e, 'i', ARGV[j + 9], 's', ARGV[j + 10], 'x', ARGV[j + 11])
    pexpireat(skey, e)
    indexes[ue] = uc
    redis.call('ZADD', ue, e, member)
    redis.call('ZADD', uc, c, member)
    redis.call('ZADD', expiry, e, member)
    out[#out + 1] = 1
  end
end
for ue, uc in pairs(indexes) do
  extend_user_ttl(ue, uc)
end
return out
