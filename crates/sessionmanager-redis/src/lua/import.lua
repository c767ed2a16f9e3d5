-- Imports sessions as SessionStore::import does, many per call (for
-- migrations): a free key (or one holding an expired record) gets the
-- session as create stores one without a user limit; a live copy with a
-- lower version is overwritten, one with the same version moves its times
-- forward; a copy as new or newer stays. KEYS: expiry index. ARGV: prefix,
-- now, then per session its member, its user's index by expiry and by
-- creation (named by the caller, as keys.rs does), and the fields u, d, v,
-- c, a, e, i, s, x. Returns per session 1 created, 2 updated, 3 unchanged, or 4
-- when the key holds another user's session (nothing written for it).
local now = tonumber(ARGV[2])
local out = {}
local indexes = {}
for j = 3, #ARGV, 12 do
  local member, ue, uc = ARGV[j], ARGV[j + 1], ARGV[j + 2]
  local user, c, a, e = ARGV[j + 3], ARGV[j + 6], ARGV[j + 7], ARGV[j + 8]
  local skey = session_key(member)
  local old = redis.call('HMGET', skey, 'u', 'e', 'v', 'a')
  if old[1] and tonumber(old[2]) > now then
    local version, stored_version = tonumber(ARGV[j + 5]), tonumber(old[3])
    if old[1] ~= user then
      out[#out + 1] = 4
    elseif version > stored_version then
      redis.call('HSET', skey, 'd', ARGV[j + 4], 'v', ARGV[j + 5])
      move_forward(ARGV[2], skey, member, user, old[4], old[2], a, e)
      out[#out + 1] = 2
    elseif version == stored_version and tonumber(e) > tonumber(old[2]) then
      move_forward(ARGV[2], skey, member, user, old[4], old[2], a, e)
      out[#out + 1] = 2
    else
      out[#out + 1] = 3
    end
  else
    if old[1] then
      forget_in_user(old[1], member)
      redis.call('DEL', skey)
    end
    redis.call('HSET', skey, 'u', user, 'd', ARGV[j + 4], 'v', ARGV[j + 5], 'c', c,
      'a', a, 'e', e, 'i', ARGV[j + 9], 's', ARGV[j + 10], 'x', ARGV[j + 11])
    redis.call('PEXPIREAT', skey, e)
    indexes[ue] = uc
    redis.call('ZADD', ue, e, member)
    redis.call('ZADD', uc, c, member)
    redis.call('ZADD', KEYS[1], e, member)
    out[#out + 1] = 1
  end
end
for ue, uc in pairs(indexes) do
  extend_user_ttl(ue, uc)
end
return out
