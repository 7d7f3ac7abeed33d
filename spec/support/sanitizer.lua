-- busted --helper for `make tsan`: drop LD_PRELOAD from our environment once
-- the sanitizer runtime is loaded, so that spawned commands run without it.
-- noenv.so is found on busted's --cpath, beside the build's core.so.
local noenv = assert(package.searchpath("spec.support.noenv", package.cpath))
assert(package.loadlib(noenv, "luaopen_noenv"))()
