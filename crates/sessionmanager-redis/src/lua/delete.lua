-- Removes a session and its index entries. KEYS: expiry index, session.
-- ARGV: prefix, now, member. Returns {1 if the session was live, else 0,
-- then what the store does after (see `unlink` in the prelude): an expired
-- one is reported}.
local f = redis.call('HMGET', KEYS[2], 'u', 'e', 'c')
if not f[1] then
  local link = linked(ARGV[3])
  if link then
    return link
  end
  redis.call('ZREM', expiry, ARGV[3])
  return { 0 }
end
reach({ user_keys(f[1]) })
redis.call('ZREM', expiry, ARGV[3])
forget_in_user(f[1], ARGV[3])
local live = 0
if tonumber(f[2]) > tonumber(ARGV[2]) then
  redis.call('DEL', KEYS[2])
  live = 1
else
  drop_expired(KEYS[2], ARGV[3], f[1], f[3], f[2])
end
table.insert(unlink, 1, live)
return unlink
