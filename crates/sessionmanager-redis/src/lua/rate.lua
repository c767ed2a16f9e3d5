-- Compare-and-set of a rate-limited key's state: its theoretical arrival
-- time in microseconds, kept until the millisecond after it.
-- KEYS: expiry index of the key's bucket (unused), the rate key. ARGV: prefix, now, expected
-- state ('' for none), new state, the millisecond it stops mattering.
-- Returns 1 if it wrote, 0 if the state was not the expected one.
local now = tonumber(ARGV[2])
local current = redis.call('GET', KEYS[2])
-- State that stopped mattering by the manager's clock is no state, even
-- if Redis's clock has not removed it yet.
if current and math.floor(tonumber(current) / 1000) + 1 <= now then
  current = false
end
if (current or '') ~= ARGV[3] then
  return 0
end
redis.call('SET', KEYS[2], ARGV[4], 'PXAT', ARGV[5])
return 1
