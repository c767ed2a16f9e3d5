-- One bounded batch of purge_expired. KEYS: expiry index.
-- ARGV: prefix, now, batch size. Returns {records removed, entries read}.
local removed, read = sweep(ARGV[2], tonumber(ARGV[3]))
return {removed, read}
