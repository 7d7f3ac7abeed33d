--- weights_fn.lua: the function that examples/weights.lua maps with `par map`.
-- The config names it as the string "weights_fn.weigh": par map puts the
-- config's directory first on package.path, so require finds this file.
local M = {}

M.weights = { type1 = 2, type2 = 3 }

--- weigh({type, n}) -> {type, n, n * weights[type]}
function M.weigh(item)
  local ty, n = item[1], item[2]
  local w = M.weights[ty]
  if not w then error(("unknown type '%s'"):format(tostring(ty)), 2) end
  return { ty, n, n * w }
end

return M
