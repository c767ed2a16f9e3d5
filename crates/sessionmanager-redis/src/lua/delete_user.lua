-- Ends a batch of a user's sessions: at most `batch` of them, oldest first,
-- all but one member to keep, so that no call holds the server for long.
-- KEYS: expiry index, the user's index by expiry, the user's index by
-- creation. ARGV: prefix, now, user, member to keep (or ''), batch.
-- Returns {live sessions ended, 1 if the user has others left to end else 0,
-- then the members whose links to remove}.
local now = tonumber(ARGV[2])
local ue, uc, keep, batch = KEYS[2], KEYS[3], ARGV[4], tonumber(ARGV[5])
local ended = 0
local members = redis.call('ZRANGE', uc, 0, batch)
reach(session_keys(members))
for _, m in ipairs(members) do
  if m ~= keep and batch > 0 then
    batch = batch - 1
    local skey = session_key(m)
    local f = redis.call('HMGET', skey, 'e', 'c')
    if f[1] and tonumber(f[1]) > now then
      redis.call('DEL', skey)
      ended = ended + 1
    elseif f[1] then
      drop_expired(skey, m, ARGV[3], f[2], f[1])
    end
    redis.call('ZREM', ue, m)
    redis.call('ZREM', uc, m)
    redis.call('ZREM', expiry, m)
    removed(m)
  end
end
local left = redis.call('ZCARD', uc)
local more = left > 1 or (left == 1 and not redis.call('ZSCORE', uc, keep))
table.insert(unlink, 1, more and 1 or 0)
table.insert(unlink, 1, ended)
return unlink
