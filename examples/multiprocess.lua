--- The seed example: Python's multiprocessing.Pool.map, in Lua.
-- Two types of numbers, each 1..9, weighted by type; every item is
-- computed on a worker process and printed as Python would print the list.
local par = require "par"

local weight = { type1 = 2, type2 = 3 }

local items = {}
for _, kind in ipairs({ "type1", "type2" }) do
  for n = 1, 9 do items[#items + 1] = { kind, n } end
end

-- Runs in a worker: 'weight' is there already, as the fork copied it.
local function weigh(item)
  local kind, n = item[1], item[2]
  return { kind, n, n * weight[kind] }
end

local results = par.map(weigh, items)

local out = {}
for i, r in ipairs(results) do
  out[i] = string.format("('%s', %d, %d)", r[1], r[2], r[3])
end
print("[" .. table.concat(out, ", ") .. "]")
