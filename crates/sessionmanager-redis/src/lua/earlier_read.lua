-- Reads a batch of the sessions a store of an earlier layout left (see
-- keys.rs), oldest expiry first, for the store to write them in the
-- current one. Standalone servers only. KEYS: the earlier layout's expiry
-- index. ARGV: prefix, now, batch size. Returns {entries read, then per
-- live session its member and fields u, d, v, c, a, e, i, s, x}; entries
-- of sessions gone or expired are removed here.
local out = { 0 }
local members = redis.call('ZRANGE', KEYS[1], 0, tonumber(ARGV[3]) - 1)
out[1] = tostring(#members)
for _, m in ipairs(members) do
  local f = redis.call('HMGET', prefix .. 's:' .. m, 'u', 'd', 'v', 'c', 'a', 'e', 'i', 's', 'x')
  if f[1] and tonumber(f[6]) > tonumber(ARGV[2]) then
    out[#out + 1] = m
    for j = 1, 9 do
      out[#out + 1] = f[j]
    end
  else
    drop_earlier_layout(m)
  end
end
return out
