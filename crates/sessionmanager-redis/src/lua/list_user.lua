-- A user's live sessions, read in one step. KEYS: expiry index, the user's
-- index by expiry. ARGV: prefix, now. Returns, per session, its member
-- followed by the fields u, d, v, c, a, e, i, s, x (10 values each); the
-- caller orders them.
local out = {}
for _, m in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '(' .. ARGV[2], '+inf')) do
  append_session(out, m)
end
return out
