-- Moves a live session to a new key in one step, within its user's bucket:
-- the old key is dead the moment the new one works. KEYS: expiry index, old
-- session, new session. ARGV: prefix, now, old member, new member.
-- Returns 1 if it moved, 0 if no live session was under the old key, -1 if
-- a live session holds the new key (nothing changed). The new key must
-- route here or be linked here already.
local now = tonumber(ARGV[2])
local f = redis.call('HMGET', KEYS[2], 'u', 'e', 'c')
if not f[1] then
  return linked(ARGV[3]) or 0
end
local target = redis.call('HMGET', KEYS[3], 'u', 'e')
reach({ user_keys(f[1]) })
if target[1] then
  reach({ user_keys(target[1]) })
end
if not target[1] then
  local link = linked(ARGV[4], 'NEWLINKED')
  if link then
    return link
  end
else
  if tonumber(target[2]) > now then
    return -1
  end
  redis.call('DEL', KEYS[3])
  forget_in_user(target[1], ARGV[4])
  redis.call('ZREM', expiry, ARGV[4])
end
if tonumber(f[2]) <= now then
  return 0
end
-- RENAME keeps the record's TTL.
redis.call('RENAME', KEYS[2], KEYS[3])
local ue, uc = user_keys(f[1])
redis.call('ZREM', ue, ARGV[3])
redis.call('ZREM', uc, ARGV[3])
redis.call('ZADD', ue, f[2], ARGV[4])
redis.call('ZADD', uc, f[3], ARGV[4])
redis.call('ZREM', expiry, ARGV[3])
redis.call('ZADD', expiry, f[2], ARGV[4])
return 1
