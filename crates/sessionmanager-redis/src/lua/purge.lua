-- One bounded batch of purge_expired in one bucket. KEYS: expiry index.
-- ARGV: prefix, now, batch size. Returns {records removed, entries read,
-- then the members whose links to remove}.
local count, read = sweep(ARGV[2], tonumber(ARGV[3]))
table.insert(unlink, 1, read)
table.insert(unlink, 1, count)
return unlink
