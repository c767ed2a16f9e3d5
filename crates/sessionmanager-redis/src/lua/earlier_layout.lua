-- Shared by the scripts that move sessions out of an earlier layout.

-- Removes session `m` as a store of an earlier layout filed it (keys.rs):
-- its hash, its expiry index entry (KEYS[1]) and its user's indexes.
local function drop_earlier_layout(m)
  local skey = prefix .. 's:' .. m
  local user = redis.call('HGET', skey, 'u')
  redis.call('DEL', skey)
  redis.call('ZREM', KEYS[1], m)
  if user then
    local h = hex(user)
    redis.call('ZREM', prefix .. 'ue:' .. h, m)
    redis.call('ZREM', prefix .. 'uc:' .. h, m)
    redis.call('ZREM', prefix .. 'u:' .. user, m)
  end
end

