-- Removes sessions of an earlier layout that the store has written in the
-- current one (see earlier_read.lua). KEYS: the earlier layout's expiry
-- index. ARGV: prefix, now, members. Returns how many it removed.
for j = 3, #ARGV do
  drop_earlier_layout(ARGV[j])
end
return #ARGV - 2
