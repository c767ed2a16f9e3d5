-- Ends all of a user's sessions but one. KEYS: expiry index, user index.
-- ARGV: prefix, now, member to keep (or ''). Returns how many live ones ended.
local now = tonumber(ARGV[2])
local ended = 0
for _, m in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
  if m ~= ARGV[3] then
    local skey = session_key(m)
    local e = redis.call('HGET', skey, 'e')
    if e then
      redis.call('DEL', skey)
      if tonumber(e) > now then
        ended = ended + 1
      end
    end
    redis.call('ZREM', KEYS[2], m)
    redis.call('ZREM', KEYS[1], m)
  end
end
return ended
