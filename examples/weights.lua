--- weights.lua: a `par map` config for the weight table.
--
--   par map examples/weights.lua                  one JSON line per item: ["type1",1,2]
--   par map examples/weights.lua --format lua     one Lua literal per item: {"type1", 1, 2}
--
-- Items are {type, n} for the types type1 and type2 and the numbers 1..9;
-- weights_fn.weigh (beside this file) returns {type, n, n * weight} with the
-- weights {type1 = 2, type2 = 3}. Results come out in item order.
local items = {}
for _, ty in ipairs({ "type1", "type2" }) do
  for n = 1, 9 do items[#items + 1] = { ty, n } end
end

return {
  fn = "weights_fn.weigh",   -- "module.func": resolved with require in par map
  items = items,
  jobs = 4,
}
