-- A user's live sessions, read in one step. KEYS: expiry index, user index.
-- ARGV: prefix, now. Returns, per session, its member followed by the fields
-- u, d, v, c, a, e, i, s, x (10 values each); the caller orders them.
local out = {}
for _, m in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '(' .. ARGV[2], '+inf')) do
  local f = redis.call('HMGET', session_key(m), 'u', 'd', 'v', 'c', 'a', 'e', 'i', 's', 'x')
  if f[1] then
    out[#out + 1] = m
    for j = 1, 9 do
      out[#out + 1] = f[j]
    end
  end
end
return out
