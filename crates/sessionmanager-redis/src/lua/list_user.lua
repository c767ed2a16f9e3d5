-- A user's live sessions, read in one step. KEYS: expiry index, the user's
-- index by expiry. ARGV: prefix, now, user. Returns, per session, its member
-- followed by the fields u, d, v, c, a, e, i, s, x (10 values each); the
-- caller orders them.
local out = {}
local seen = {}
for _, m in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '(' .. ARGV[2], '+inf')) do
  seen[m] = true
  append_session(out, m)
end
-- Sessions still indexed as the first layout did (read only: adopted by the next write).
for _, s in ipairs(first_layout_sessions(ARGV[3], ARGV[2]) or {}) do
  if not seen[s[1]] then
    append_session(out, s[1])
  end
end
return out
