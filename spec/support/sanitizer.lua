-- busted --helper for `make tsan`: drop LD_PRELOAD from our environment once
-- the sanitizer runtime is loaded, so that spawned commands run without it.
assert(package.loadlib("./spec/support/noenv.so", "luaopen_noenv"))()
