-- Edits top-level members of a live session's data in place, as one write:
-- version + 1, and activity recorded as the manager's compare-and-set would
-- (last_active to now; expires_at slid forward when the session slides,
-- capped by its absolute deadline). KEYS: expiry index, session.
-- ARGV: prefix, now, member, max_bytes, then either 'merge' followed by
-- key, value pairs (keys as they appear between the quotes, values as JSON
-- text), 'incr', key, by, or 'append', key, item (compact JSON text).
-- Returns {version, value} (value: the increment's result, the list's new
-- length after an append, 0 for a merge), -1 when no live session is there,
-- or -2 when it declines and writes nothing (the manager then reads and
-- compares-and-sets, which also reports errors): data it does not parse here
-- (an escaped key, spacing or a malformed value at the top level: the store
-- never writes them, so such text was changed by hand, and the manager's own
-- read reports it), a member that is not a plain integer, a member to append
-- to that is not a list, numbers past 2^53, or a result over max_bytes.
-- Nested values are copied as they are.

-- Where the JSON string starting at `i` ends (its closing quote).
local function string_end(text, i)
  local j = i + 1
  while true do
    local q = text:find('["\\]', j)
    if not q then
      return nil
    end
    if text:sub(q, q) == '"' then
      return q
    end
    j = q + 2 -- the escaped character
  end
end

-- Whether `t` is true, false, null or a JSON number, with nothing around it.
local function is_scalar(t)
  if t == 'true' or t == 'false' or t == 'null' then
    return true
  end
  local int, rest = t:match('^%-?(%d+)(.*)$')
  if not int or (#int > 1 and int:sub(1, 1) == '0') then
    return false
  end
  if rest:sub(1, 1) == '.' then
    rest = rest:match('^%.%d+(.*)$')
    if not rest then
      return false
    end
  end
  return rest == '' or rest:match('^[eE][+-]?%d+$') ~= nil
end

-- Where the JSON value starting at `i` ends, inside a container that
-- `closer` ('}' or ']') ends.
local function value_end(text, i, closer)
  local c = text:sub(i, i)
  if c == '"' then
    return string_end(text, i)
  end
  if c == '{' or c == '[' then
    local depth, j = 0, i
    while true do
      j = text:find('[%[%]{}"]', j)
      if not j then
        return nil
      end
      local ch = text:sub(j, j)
      if ch == '"' then
        j = string_end(text, j)
        if not j then
          return nil
        end
      elseif ch == '{' or ch == '[' then
        depth = depth + 1
      else
        depth = depth - 1
        if depth == 0 then
          return j
        end
      end
      j = j + 1
    end
  end
  -- A number, true, false or null: up to the next ',' or '}', and only if
  -- it is written as the store writes it (no spacing, no leading zero).
  local j = text:find(closer == '}' and '[,}]' or '[,%]]', i)
  if not j or not is_scalar(text:sub(i, j - 1)) then
    return nil
  end
  return j - 1
end

-- The members of the compact JSON object `text`: {key, value start, value
-- end} each, in order; nil for anything else (an escaped key, spacing).
local function members(text)
  local found = {}
  if text == '{}' then
    return found
  end
  if text:sub(1, 1) ~= '{' then
    return nil
  end
  local i = 2
  while true do
    if text:sub(i, i) ~= '"' then
      return nil
    end
    local close = text:find('"', i + 1, true)
    if not close then
      return nil
    end
    local key = text:sub(i + 1, close - 1)
    if key:find('\\', 1, true) or text:sub(close + 1, close + 1) ~= ':' then
      return nil
    end
    local stop = value_end(text, close + 2, '}')
    if not stop then
      return nil
    end
    found[#found + 1] = { key, close + 2, stop }
    local after = text:sub(stop + 1, stop + 1)
    if after == '}' then
      if stop + 1 ~= #text then
        return nil
      end
      return found
    end
    if after ~= ',' then
      return nil
    end
    i = stop + 2
  end
end

-- How many items the compact JSON list `text` holds; nil for anything else.
local function list_length(text)
  if text == '[]' then
    return 0
  end
  if text:sub(1, 1) ~= '[' then
    return nil
  end
  local n, i = 0, 2
  while true do
    local stop = value_end(text, i, ']')
    if not stop then
      return nil
    end
    n = n + 1
    local after = text:sub(stop + 1, stop + 1)
    if after == ']' then
      return stop + 1 == #text and n or nil
    end
    if after ~= ',' then
      return nil
    end
    i = stop + 2
  end
end

local EXACT = 2 ^ 53 -- Lua numbers are doubles: integers are exact below this

local now = tonumber(ARGV[2])
local f = redis.call('HMGET', KEYS[2], 'u', 'e', 'v', 'a', 'd', 'i', 's', 'x')
if not f[1] then
  return linked(ARGV[3]) or -1
end
if tonumber(f[2]) <= now then
  return -1
end
local data = f[5]
local found = members(data)
if not found then
  return -2
end
local position = {}
for n, m in ipairs(found) do
  position[m[1]] = n
end
local replaced, appended = {}, {}
local result
if ARGV[5] == 'incr' then
  local key, by = ARGV[6], tonumber(ARGV[7])
  local current = 0
  local n = position[key]
  if n then
    local text = data:sub(found[n][2], found[n][3])
    if not (text == '0' or text:match('^%-?[1-9]%d*$')) then
      return -2
    end
    current = tonumber(text)
  end
  result = current + by
  if math.abs(current) >= EXACT or math.abs(by) >= EXACT or math.abs(result) >= EXACT then
    return -2
  end
  local text = string.format('%.0f', result)
  if n then
    replaced[n] = text
  else
    appended[1] = { key, text }
  end
elseif ARGV[5] == 'append' then
  local key, item = ARGV[6], ARGV[7]
  local n = position[key]
  if n then
    local text = data:sub(found[n][2], found[n][3])
    local length = list_length(text)
    if not length then
      return -2
    end
    result = length + 1
    replaced[n] = length == 0 and ('[' .. item .. ']') or (text:sub(1, -2) .. ',' .. item .. ']')
  else
    result = 1
    appended[1] = { key, '[' .. item .. ']' }
  end
elseif ARGV[5] == 'merge' then
  for k = 6, #ARGV, 2 do
    local n = position[ARGV[k]]
    if n then
      replaced[n] = ARGV[k + 1]
    else
      appended[#appended + 1] = { ARGV[k], ARGV[k + 1] }
    end
  end
else
  return -2
end

local parts = {}
for n, m in ipairs(found) do
  parts[n] = '"' .. m[1] .. '":' .. (replaced[n] or data:sub(m[2], m[3]))
end
for _, member in ipairs(appended) do
  parts[#parts + 1] = '"' .. member[1] .. '":' .. member[2]
end
local edited = '{' .. table.concat(parts, ',') .. '}'
if #edited > tonumber(ARGV[4]) then
  return -2
end

local ue, uc = prepare_user(f[1], ARGV[2])
local version = tonumber(f[3]) + 1
redis.call('HSET', KEYS[2], 'd', edited, 'v', string.format('%.0f', version))
-- Activity now; a sliding session's deadline moves too, capped by its
-- absolute one. move_forward only ever moves either forward.
local e = f[2]
if f[7] == '1' then
  local deadline = now + tonumber(f[6])
  if f[8] and f[8] ~= '' then
    deadline = math.min(deadline, tonumber(f[8]))
  end
  e = string.format('%.0f', deadline)
end
move_forward(KEYS[2], ARGV[3], ue, uc, f[4], f[2], ARGV[2], e)
return { version, result or 0 }
