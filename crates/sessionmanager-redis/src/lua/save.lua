-- Compare-and-set: replaces a live session's data if its version is the
-- expected one. KEYS: expiry index, session.
-- ARGV: prefix, now, member, expected version, data, new version,
-- last_active, expires_at.
-- Returns 0 when saved, -1 when no live session is there, or the stored
-- version (a string) when it differs from the expected one.
local f = redis.call('HMGET', KEYS[2], 'u', 'e', 'v', 'a')
if not f[1] then
  return linked(ARGV[3]) or -1
end
if tonumber(f[2]) <= tonumber(ARGV[2]) then
  return -1
end
if f[3] ~= ARGV[4] then
  return f[3]
end
local ue, uc = prepare_user(f[1], ARGV[2])
redis.call('HSET', KEYS[2], 'd', ARGV[5], 'v', ARGV[6])
move_forward(KEYS[2], ARGV[3], ue, uc, f[4], f[2], ARGV[7], ARGV[8])
return 0
