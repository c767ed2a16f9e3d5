-- One page of an export: a ZSCAN step over the expiry index, never a scan
-- of the keyspace. KEYS: expiry index of one bucket. ARGV: prefix, now, ZSCAN cursor,
-- COUNT hint. Returns the next cursor ("0" when done), then per live
-- session its member followed by the fields u, d, v, c, a, e, i, s, x.
local scan = redis.call('ZSCAN', expiry, ARGV[3], 'COUNT', ARGV[4])
local out = {scan[1]}
local entries = scan[2]
for j = 1, #entries, 2 do
  if tonumber(entries[j + 1]) > tonumber(ARGV[2]) then
    append_session(out, entries[j])
  end
end
return out
