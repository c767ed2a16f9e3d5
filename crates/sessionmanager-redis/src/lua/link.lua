-- Links a key routed to this bucket to the bucket of its user, where its
-- session lives, before that session is written there. KEYS: expiry index,
-- the key's session here. ARGV: prefix, now, member, the user's bucket,
-- 1 to replace a link to another bucket.
-- Returns 0 if it linked, 1 if the link was there already, -1 if a live
-- session holds the key here, or the other bucket a link names (a
-- string), for the store to check there.
local e = redis.call('HGET', KEYS[2], 'e')
if e and tonumber(e) > tonumber(ARGV[2]) then
  return -1
end
local current = redis.call('GET', link_key(ARGV[3]))
if current == ARGV[4] then
  return 1
end
if current and ARGV[5] ~= '1' then
  return current
end
redis.call('SET', link_key(ARGV[3]), ARGV[4])
return 0
