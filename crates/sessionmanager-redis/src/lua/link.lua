-- Links keys routed to this bucket to the buckets of their users, where
-- their sessions live, before those sessions are written there. KEYS: the
-- expiry index of the bucket every key routes to (on Redis Cluster; a
-- standalone server takes keys of any bucket). ARGV: prefix, now, then per
-- key its member, its user's bucket, and 1 to replace a link to another
-- bucket. Returns per key 0 if it linked, 1 if the link was there already,
-- -1 if a live session holds the key in its own bucket, or the other bucket
-- a link names (a string), for the store to check there.
local now = tonumber(ARGV[2])
local function own_tag(member)
  return '{' .. (tonumber(string.sub(member, 1, 4), 16) % BUCKETS) .. '}'
end
for i = 3, #ARGV, 3 do
  tag = own_tag(ARGV[i])
  reach({ session_key(ARGV[i]), link_key(ARGV[i]) })
end
local out = {}
for i = 3, #ARGV, 3 do
  local member, home = ARGV[i], ARGV[i + 1]
  tag = own_tag(member)
  local e = redis.call('HGET', session_key(member), 'e')
  local current = redis.call('GET', link_key(member))
  if e and tonumber(e) > now then
    out[#out + 1] = -1
  elseif current == home then
    out[#out + 1] = 1
  elseif current and ARGV[i + 2] ~= '1' then
    out[#out + 1] = current
  else
    redis.call('SET', link_key(member), home)
    out[#out + 1] = 0
  end
end
return out
