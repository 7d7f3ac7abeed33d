--- A big Lua heap for the benchmarks: many small tables of numbers and
-- short strings, like a program's data, until the collector counts 'mb' MiB.
-- Both benches run from the repository's top, so `require "bench.heap"`.
return function(mb)
  local heap, i = {}, 0
  while collectgarbage("count") < mb * 1024 do
    for _ = 1, 10000 do
      i = i + 1
      heap[i] = { i, i * 0.5, i + 1, i + 2, i + 3, i + 4, i + 5, i + 6, i + 7, i + 8,
        i + 9, i + 10, i + 11, i + 12, "k" .. (i % 4096), "v" }
    end
  end
  return heap
end
