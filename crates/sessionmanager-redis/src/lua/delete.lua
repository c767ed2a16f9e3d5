-- Removes a session and its index entries. KEYS: expiry index, session.
-- ARGV: prefix, now, member. Returns 1 if the session was live, else 0.
local f = redis.call('HMGET', KEYS[2], 'u', 'e')
if not f[1] then
  local link = linked(ARGV[3])
  if link then
    return link
  end
  redis.call('ZREM', expiry, ARGV[3])
  return 0
end
reach({ user_keys(f[1]) })
redis.call('ZREM', expiry, ARGV[3])
redis.call('DEL', KEYS[2])
forget_in_user(f[1], ARGV[3])
if tonumber(f[2]) > tonumber(ARGV[2]) then
  return 1
end
return 0
