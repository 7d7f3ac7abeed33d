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
MANDIR     ?= $(PREFIX)/share/man
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

# The normal build sits in the tree, where LuaRocks, `make install` and the
# specs look: par/core.so from src/*.o, and the shims some specs load,
# spec/support/*.so.  `make asan` and `make tsan` build the same files in the
# same layout under build/asan/ and build/tsan/ (a sub-make with
# B=build/asan/) and run the specs with that folder first on the C path.  So
# an instrumented core.so never lands in par/, even when a spec fails, and no
# build disturbs another.  `make fuzz` builds in build/fuzz/.
B    =
SRCS = $(wildcard src/*.c)
OBJS = $(SRCS:%.c=$(B)%.o)
LUAS = $(wildcard lua/par/*.lua)
CLI_LUAS = $(wildcard lua/par/cli/*.lua)
# sigchld.so: a host with its own SIGCHLD handler; nomap.so: an LD_PRELOAD
# shim, par.map's workers get no mmap; noenv.so: make tsan's busted helper.
SHIMS = $(patsubst %.c,%.so,$(wildcard spec/support/*.c))

.PHONY: all man deps test test-ssh demo bench install install-lua clean asan tsan valgrind lint fuzz

all: par/core.so man

# The man page, made from what --help is made of (doc/mkman.lua).
man: doc/par.1
doc/par.1: doc/mkman.lua par/core.so lua/par/options.lua $(CLI_LUAS)
	$(HERE)$(LUA) doc/mkman.lua > $@.tmp && mv $@.tmp $@

$(B)par/core.so: $(OBJS)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(LIBFLAG) -o $@ $(OBJS) $(LDFLAGS) -pthread

$(B)src/%.o: src/%.c src/*.h
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(B)spec/support/%.so: spec/support/%.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(LIBFLAG) -o $@ $<

# Install what the build and the tests need on Debian, when it is missing.
deps:
	@sh .ci/deps.sh

test: deps all $(SHIMS)
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
# hangs: the curl specs are skipped; the #gnu differential specs run GNU
# parallel's perl twice a case and test the Lua layer: they are skipped too, and
# so is the #rss spec, which bounds a peak RSS that ASan's shadow memory inflates,
# the #install specs, which run make and luarocks, and the #man specs, whose groff
# and man inherit the preload: Debian's troff has an alloc-dealloc mismatch ASan aborts on).
# The 20,000-command load spec is skipped
# under sanitizers too: its volume is bounded by the machine's spawn rate (about
# a minute here), and the 1,000-command spec exercises the same paths.
# spec/helpers.lua hands the build's folder on to the Lua processes specs start.
ASAN = $(SAN) -fsanitize=address,undefined
asan: deps
	$(MAKE) B=build/asan/ CFLAGS="$(ASAN)" LDFLAGS="$(ASAN)" build/asan/par/core.so $(SHIMS:%=build/asan/%)
	ASAN_OPTIONS=detect_leaks=0 LD_PRELOAD="$$($(CC) -print-file-name=libasan.so) $$($(CC) -print-file-name=libubsan.so)" \
	  $(SANBUSTED) --cpath='build/asan/?.so' --exclude-tags=curl,load,gnu,rss,install,man

# The thread pool under ThreadSanitizer: the par.run specs.
TSAN = $(SAN) -fsanitize=thread
tsan: deps
	$(MAKE) B=build/tsan/ CFLAGS="$(TSAN)" LDFLAGS="$(TSAN)" build/tsan/par/core.so $(SHIMS:%=build/tsan/%)
	TSAN_OPTIONS="halt_on_error=1 report_signal_unsafe=0" LD_PRELOAD="$$($(CC) -print-file-name=libtsan.so)" \
	  $(SANBUSTED) --cpath='build/tsan/?.so' --helper=spec/support/sanitizer.lua --exclude-tags=child_lua,load \
	  spec/run_spec.lua spec/jobcontrol_spec.lua spec/fault_spec.lua

# A representative subset under valgrind, on the normal build: no definite
# leak, no error.
VALGRIND = valgrind -q --leak-check=full --errors-for-leak-kinds=definite \
  --error-exitcode=1 --child-silent-after-fork=yes --trace-children=no
valgrind: deps all
	$(HERE) $(VALGRIND) $(LUA) spec/support/valgrind.lua

# libFuzzer: each fuzz/NAME_fuzz.c, with the src/ files its line below names,
# is built as build/fuzz/NAME_fuzz and runs FUZZ_SECONDS from the seeds in
# fuzz/NAME_corpus (decode's: fuzz/corpus).  New inputs go to
# build/fuzz/NAME_work; a crash, leak or timeout to fuzz/found-NAME-*
# (git-ignored: fix it, then add it to the corpus).  A new target is its .c,
# its corpus and one line here; `make fuzz-NAME` runs one target.
build/fuzz/decode_fuzz: src/codec.c src/buf.c
build/fuzz/arena_fuzz: src/arena.c
build/fuzz/frame_fuzz: src/frame.c src/buf.c
build/fuzz/lines_fuzz: src/lines.c
build/fuzz/ship_fuzz: src/ship.c src/codec.c src/buf.c
decode_CORPUS = fuzz/corpus

FUZZ_SECONDS ?= 60
FUZZ_CC = clang -g -O1 -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
FUZZERS = $(patsubst fuzz/%_fuzz.c,%,$(wildcard fuzz/*_fuzz.c))
fuzz: $(FUZZERS:%=fuzz-%)

build/fuzz/%_fuzz: fuzz/%_fuzz.c src/*.h
	@mkdir -p $(@D)
	$(FUZZ_CC) -I$(LUA_INCDIR) -o $@ $(filter %.c,$^) -llua5.4

fuzz-%: build/fuzz/%_fuzz
	@mkdir -p build/fuzz/$*_work
	$< -max_total_time=$(FUZZ_SECONDS) -artifact_prefix=fuzz/found-$*- \
	  build/fuzz/$*_work $(or $($*_CORPUS),fuzz/$*_corpus)

lint:
	luacheck lua spec examples bench bin
	cppcheck --quiet --error-exitcode=1 --enable=warning,performance,portability \
	  --inline-suppr -I src src

# par.cli was one file, par/cli.lua, before it became par/cli/: an old one
# left in LUADIR would shadow par/cli/init.lua, so it goes.
install: all install-lua
	install -d $(DESTDIR)$(LIBDIR)/par $(DESTDIR)$(MANDIR)/man1
	install -m 755 par/core.so $(DESTDIR)$(LIBDIR)/par/core.so
	install -m 644 doc/par.1 $(DESTDIR)$(MANDIR)/man1/par.1

# The Lua modules and bin/par alone (a spec installs them beside the core.so
# of the build it tests).
install-lua:
	install -d $(DESTDIR)$(LUADIR)/par/cli $(DESTDIR)$(BINDIR)
	install -m 644 $(LUAS) $(DESTDIR)$(LUADIR)/par/
	install -m 644 $(CLI_LUAS) $(DESTDIR)$(LUADIR)/par/cli/
	rm -f $(DESTDIR)$(LUADIR)/par/cli.lua
	install -m 755 bin/par $(DESTDIR)$(BINDIR)/par

clean:
	rm -rf par doc/par.1 src/*.o spec/support/*.so build bench/floor bench/faults
