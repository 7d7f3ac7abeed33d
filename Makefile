# par: build, test, install.  Variable names follow LuaRocks' so that
# `luarocks make` and `make install` agree.

LUA        ?= lua5.4
PREFIX     ?= /usr/local
LUA_INCDIR ?= /usr/include/lua5.4
# Accepted as LuaRocks passes it, but unused: a Lua module must not link liblua.
LUA_LIBDIR ?= /usr/lib/x86_64-linux-gnu
LIBFLAG    ?= -shared
LIBDIR     ?= $(PREFIX)/lib/lua/5.4
LUADIR     ?= $(PREFIX)/share/lua/5.4
BINDIR     ?= $(PREFIX)/bin
CC         ?= cc
CFLAGS     ?= -O2 -g
WARN        = -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes
ALL_CFLAGS  = -std=c99 -D_GNU_SOURCE -fPIC -pthread $(WARN) -I$(LUA_INCDIR) $(CFLAGS)
SAN         = -O1 -g -fno-omit-frame-pointer -fno-sanitize-recover=all
BUSTED      = busted --lua=$(LUA)
# Under a preloaded sanitizer, start busted in lua5.4 directly (no re-exec).
SANBUSTED   = $(LUA) $$(command -v busted) --ignore-lua
# Run from the checkout, with the built module first on the paths.
HERE        = LUA_PATH='lua/?.lua;lua/?/init.lua;;' LUA_CPATH='./?.so;;' 

SRCS = $(wildcard src/*.c)
OBJS = $(SRCS:.c=.o)
LUAS = $(wildcard lua/par/*.lua)

.PHONY: all deps test test-ssh demo bench install clean asan tsan valgrind lint fuzz

all: par/core.so

par/core.so: $(OBJS)
	@mkdir -p par
	$(CC) $(ALL_CFLAGS) $(LIBFLAG) -o $@ $(OBJS) $(LDFLAGS) -pthread

src/%.o: src/%.c src/*.h
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

# Install what the build and the tests need on Debian, when it is missing.
deps:
	@sh .ci/deps.sh

# A C helper some specs load: a host with its own SIGCHLD handler.
spec/support/sigchld.so: spec/support/sigchld.c
	$(CC) $(ALL_CFLAGS) $(LIBFLAG) -o $@ $<

# An LD_PRELOAD shim some specs use: par.map's workers get no mmap.
spec/support/nomap.so: spec/support/nomap.c
	$(CC) $(ALL_CFLAGS) $(LIBFLAG) -o $@ $<

test: deps all spec/support/sigchld.so spec/support/nomap.so
	$(BUSTED)

# Only the SSH specs: two throwaway sshd on 127.0.0.2 and 127.0.0.3
# (spec/support/sshd.sh), stopped at the end whether the specs pass or not.
test-ssh: deps all
	$(BUSTED) spec/ssh_spec.lua

# The main job: export a 1,000,000-row SQLite table in parallel partitions,
# from Lua (par.run, with a summary that checks the row counts add up), then
# with the par command and a config (resumable through its joblog).
demo: deps all
	$(HERE) $(LUA) examples/export_table.lua
	$(HERE) $(LUA) bin/par --bar run examples/export.lua

bench: deps all
	$(HERE) sh bench/run.sh

# lua5.4 itself is not instrumented: preload the sanitizer runtimes.  The
# commands the specs spawn inherit them (which ASan tolerates, but Debian's curl
# hangs: the curl specs are skipped).  The 20,000-command load spec is skipped
# under sanitizers too: its volume is bounded by the machine's spawn rate (about
# a minute here), and the 1,000-command spec exercises the same paths.
asan: deps
	$(MAKE) clean all spec/support/sigchld.so spec/support/nomap.so CFLAGS="$(SAN) -fsanitize=address,undefined" LDFLAGS="-fsanitize=address,undefined"
	ASAN_OPTIONS=detect_leaks=0 LD_PRELOAD="$$($(CC) -print-file-name=libasan.so) $$($(CC) -print-file-name=libubsan.so)" \
	  $(SANBUSTED) --exclude-tags=curl,load
	$(MAKE) clean

# The thread pool under ThreadSanitizer: the par.run specs.
tsan: deps
	$(MAKE) clean all spec/support/sigchld.so CFLAGS="$(SAN) -fsanitize=thread" LDFLAGS="-fsanitize=thread"
	$(CC) $(ALL_CFLAGS) $(LIBFLAG) -o spec/support/noenv.so spec/support/noenv.c
	TSAN_OPTIONS="halt_on_error=1 report_signal_unsafe=0" LD_PRELOAD="$$($(CC) -print-file-name=libtsan.so)" \
	  $(SANBUSTED) --helper=spec/support/sanitizer.lua --exclude-tags=child_lua,load \
	  spec/run_spec.lua spec/jobcontrol_spec.lua spec/fault_spec.lua
	$(MAKE) clean

# A representative subset under valgrind: no definite leak, no error.
VALGRIND = valgrind -q --leak-check=full --errors-for-leak-kinds=definite \
  --error-exitcode=1 --child-silent-after-fork=yes --trace-children=no
valgrind: deps all spec/support/sigchld.so
	$(HERE) $(VALGRIND) $(LUA) spec/valgrind.lua

# libFuzzer on the par.map result decoder, from the seed corpus in fuzz/corpus,
# then on a worker's allocator, from fuzz/arena_corpus; FUZZ_SECONDS each.
# New inputs go to fuzz/work and fuzz/arena_work, crashes to fuzz/crash-*
# (add them to the corpus).  Last, par.map's frame decoder, from
# fuzz/frame_corpus, new inputs to fuzz/frame_work.
FUZZ_SECONDS ?= 60
FUZZ_CC = clang -g -O1 -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
fuzz:
	$(FUZZ_CC) -I$(LUA_INCDIR) fuzz/decode_fuzz.c src/codec.c src/buf.c -llua5.4 -o fuzz/decode_fuzz
	$(FUZZ_CC) fuzz/arena_fuzz.c src/arena.c -o fuzz/arena_fuzz
	mkdir -p fuzz/work fuzz/arena_work
	fuzz/decode_fuzz -max_total_time=$(FUZZ_SECONDS) -artifact_prefix=fuzz/ fuzz/work fuzz/corpus
	fuzz/arena_fuzz -max_total_time=$(FUZZ_SECONDS) -artifact_prefix=fuzz/ fuzz/arena_work fuzz/arena_corpus
	$(FUZZ_CC) fuzz/frame_fuzz.c src/frame.c src/buf.c -o fuzz/frame_fuzz
	mkdir -p fuzz/frame_work
	fuzz/frame_fuzz -max_total_time=$(FUZZ_SECONDS) -artifact_prefix=fuzz/ fuzz/frame_work fuzz/frame_corpus

lint:
	luacheck lua spec examples bench bin
	cppcheck --quiet --error-exitcode=1 --enable=warning,performance,portability \
	  --inline-suppr -I src src

install: all
	install -d $(DESTDIR)$(LIBDIR)/par $(DESTDIR)$(LUADIR)/par $(DESTDIR)$(BINDIR)
	install -m 755 par/core.so $(DESTDIR)$(LIBDIR)/par/core.so
	install -m 644 $(LUAS) $(DESTDIR)$(LUADIR)/par/
	install -m 755 bin/par $(DESTDIR)$(BINDIR)/par

clean:
	rm -rf par src/*.o spec/support/*.so fuzz/decode_fuzz fuzz/work fuzz/arena_fuzz fuzz/arena_work bench/floor bench/faults
	rm -rf fuzz/frame_fuzz fuzz/frame_work
