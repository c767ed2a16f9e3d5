-- Records activity on a live session without touching data or version.
-- KEYS: expiry index, session. ARGV: prefix, now, member, last_active, expires_at.
-- Returns 1 if a live session was there, else 0 (an expired one is never revived).
local f = redis.call('HMGET', KEYS[2], 'u', 'e', 'a')
if not f[1] then
  return linked(ARGV[3]) or 0
end
if tonumber(f[2]) <= tonumber(ARGV[2]) then
  return 0
end
local ue, uc = prepare_user(f[1], ARGV[2])
move_forward(KEYS[2], ARGV[3], ue, uc, f[3], f[2], ARGV[4], ARGV[5])
return 1
