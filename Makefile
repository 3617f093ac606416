# vconv: deps, build, run, test, bench.
#
#   make run    Debian's nginx with the module on http://127.0.0.1:8080
#   make test   every test, ending with prove's summary

SHELL      := /bin/bash
NGX_SRC    ?= /usr/share/nginx/src
BUILD      := build
VAR        := var
CC         ?= cc

PKGS       := libavformat libavcodec libavfilter libswscale libswresample \
              libavutil jansson
# what `make run` needs (build and run the module), and what only the
# tests, benchmarks and fuzzers need on top of it
RUN_PKGS   := nginx nginx-dev libavformat-dev libavcodec-dev \
              libavfilter-dev libswscale-dev libswresample-dev \
              libavutil-dev libjansson-dev libseccomp-dev pkg-config \
              libpcre2-dev libssl-dev zlib1g-dev gcc make openssl
TEST_PKGS  := ffmpeg perl curl chromium valgrind wrk clang \
              libclang-rt-14-dev llvm time
DEB_PKGS   := $(RUN_PKGS) $(TEST_PKGS)

CORE_SRCS  := $(sort $(wildcard src/vconv_*.c))
CORE_HDRS  := $(wildcard src/vconv*.h)
CORE_OBJS  := $(patsubst src/%.c,$(BUILD)/core/%.o,$(CORE_SRCS))
GLUE_SRCS  := ngx_http_vconv_module.c $(wildcard src/ngx_http_vconv_*.c) \
              $(wildcard src/ngx_http_vconv_*.h)
UNIT_SRCS  := $(sort $(wildcard t/unit/test_*.c))
# every test file at any depth, so one in a new folder is not left out
TESTS      := $(shell find t -name node_modules -prune -o -name '*.t' \
                -print | sort)
UNIT_BINS  := $(patsubst t/unit/%.c,$(BUILD)/t/%,$(UNIT_SRCS))

PKG_CFLAGS  = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS    = $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CFLAGS     ?= -O2 -g
WFLAGS     := -Wall -Wextra -Werror -Wno-unused-parameter
CORE_CFLAGS = $(CFLAGS) $(WFLAGS) -std=gnu11 -pthread -Isrc $(PKG_CFLAGS)

.PHONY: all build deps run-deps web-deps run test test-asan unit bench \
        fuzz asan clean

all: build

# what `make run` builds; `make build` adds the CLI, unit tests and ASan
RUN_TARGETS := $(BUILD)/ngx_http_vconv_module.so $(BUILD)/vconv-sandbox

build: $(RUN_TARGETS) $(BUILD)/vconv-cli $(BUILD)/vconv-sidedata \
       $(UNIT_BINS) $(BUILD)/asan/ngx_http_vconv_module.so \
       $(BUILD)/asan/vconv-sandbox

# Installs only what is missing; apt-get update only when something is.
# $(1): the packages
define APT_MISSING
	@missing=""; \
	for p in $(1); do \
	    dpkg-query -W -f='$${Status}' $$p 2>/dev/null \
	        | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	    echo "deps: installing$$missing"; \
	    export DEBIAN_FRONTEND=noninteractive; \
	    apt-get update -qq && apt-get install -y -qq --no-install-recommends \
	        $$missing >/dev/null || exit 1; \
	fi
endef

# `make run`: only what building and running the module needs
run-deps:
	$(call APT_MISSING,$(RUN_PKGS))

# everything: the tests' packages too, and Debian's nodejs/npm for the
# browser test when there is no npm (a newer Node.js, if present, is kept)
deps:
	$(call APT_MISSING,$(DEB_PKGS) $$(command -v npm >/dev/null || echo nodejs npm))
	@$(MAKE) --no-print-directory web-deps

# npm ci only when the lock changed since the last install
web-deps:
	@if [ -f t/web/package.json ] \
	    && ! cmp -s t/web/package-lock.json t/web/node_modules/.vconv-lock; \
	then \
	    cd t/web && npm ci --no-audit --no-fund --loglevel=error \
	    && cp package-lock.json node_modules/.vconv-lock; \
	fi

# The page's tus client (html/vendor/tus.min.js) is tus-js-client's own
# browser build from npm (t/web/package.json pins the version), committed
# so that a checkout, `make run` and the Debian package serve it with no
# npm and no network; t/web_tus.t checks it is byte for byte the locked
# version's file.  After a version bump in t/web/package.json, `make
# web-vendor` copies it again.
.PHONY: web-vendor
web-vendor: web-deps
	cp t/web/node_modules/tus-js-client/dist/tus.min.js html/vendor/tus.min.js
	cp t/web/node_modules/tus-js-client/LICENSE \
	    html/vendor/tus-js-client.LICENSE

# The module is built in a copy of Debian's nginx build kit, configured
# with the flags Debian's nginx was built with, so the .so loads into it.
# NGX_CC_OPT and NGX_LD_OPT add to the compiler and linker flags (debian/rules
# passes Debian's build flags); CFLAGS in the environment would replace
# nginx's own (-Wall -Werror), so configure does not see it.  config lists
# the module's files, so a file added or removed there is
# a change to config, which configures again.  A file in src/ that config
# does not list would be left out of the module (and found only when
# nginx loads it): the module's rules refuse to build instead.
UNLISTED    = $(filter-out $(shell grep -o 'src/[A-Za-z0-9_]*\.[ch]' config), \
              $(wildcard src/*.c src/*.h))
CHECK_CONFIG = $(if $(UNLISTED),$(error config does not list $(UNLISTED): \
               add each to ngx_module_srcs or ngx_module_deps))

# nginx names a module's objects after the folder of its sources and then
# rewrites every ".S", ".cc" and ".cpp" in the names (auto/make): a
# checkout in /tmp/ci.Sawj built objs/objs/addon/ci.oawj/... and failed.
# The module is configured through a link whose name is always "vconv".
ADDON      := $(CURDIR)/$(BUILD)/addon/vconv

$(ADDON):
	@mkdir -p $(BUILD)/addon && ln -sfn $(CURDIR) $(ADDON)

$(BUILD)/nginx/objs/Makefile: config | $(ADDON)
	@rm -rf $(BUILD)/nginx && mkdir -p $(BUILD) \
	    && cp -r $(NGX_SRC) $(BUILD)/nginx
	cd $(BUILD)/nginx && source ./conf_flags \
	    && env -u CFLAGS ./configure "$${NGX_CONF_FLAGS[@]}" \
	        --with-cc-opt="$(NGX_CC_OPT) -Wextra -Wno-unused-parameter -Wno-missing-field-initializers" \
	        --with-ld-opt="$(NGX_LD_OPT)" \
	        --add-dynamic-module=$(ADDON) >configure.log \
	    || { tail -20 $(BUILD)/nginx/configure.log; exit 1; }

$(BUILD)/ngx_http_vconv_module.so: $(BUILD)/nginx/objs/Makefile $(GLUE_SRCS) \
        $(CORE_SRCS) $(CORE_HDRS)
	$(CHECK_CONFIG)
	$(MAKE) --no-print-directory -C $(BUILD)/nginx -f objs/Makefile modules
	install -m 755 $(BUILD)/nginx/objs/ngx_http_vconv_module.so $@.tmp && mv -f $@.tmp $@

# The same module with AddressSanitizer, for the hostile-input tests: load
# it into Debian's nginx with LD_PRELOAD=$$(gcc -print-file-name=libasan.so)
ASAN_FLAGS := -fsanitize=address -fno-omit-frame-pointer
# -z nodelete: a worker destroys its cycle's pool before exit(), which
# dlcloses the module and with it libav; LeakSanitizer, which runs after,
# would then report every block that libav's and its codec libraries'
# static data (now unmapped) still points to, with no usable stack.  Kept
# mapped, those blocks are reachable, and a block the glue really loses
# is still reported (t/lsan.supp, make test-asan).
ASAN_LDFLAGS := $(ASAN_FLAGS) -Wl,-z,nodelete

$(BUILD)/nginx-asan/objs/Makefile: config Makefile | $(ADDON)
	@rm -rf $(BUILD)/nginx-asan && mkdir -p $(BUILD) \
	    && cp -r $(NGX_SRC) $(BUILD)/nginx-asan
	cd $(BUILD)/nginx-asan && source ./conf_flags \
	    && ./configure "$${NGX_CONF_FLAGS[@]}" \
	        --with-cc-opt="-Wextra -Wno-unused-parameter -Wno-missing-field-initializers $(ASAN_FLAGS)" \
	        --with-ld-opt="$(ASAN_LDFLAGS)" \
	        --add-dynamic-module=$(ADDON) >configure.log \
	    || { tail -20 $(BUILD)/nginx-asan/configure.log; exit 1; }

$(BUILD)/asan/ngx_http_vconv_module.so: $(BUILD)/nginx-asan/objs/Makefile \
        $(GLUE_SRCS) $(CORE_SRCS) $(CORE_HDRS)
	$(CHECK_CONFIG)
	$(MAKE) --no-print-directory -C $(BUILD)/nginx-asan -f objs/Makefile \
	    modules
	@mkdir -p $(dir $@)
	install -m 755 $(BUILD)/nginx-asan/objs/ngx_http_vconv_module.so $@.tmp && mv -f $@.tmp $@

asan: $(BUILD)/asan/ngx_http_vconv_module.so

$(BUILD)/core/%.o: src/%.c $(CORE_HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CORE_CFLAGS) -c -o $@ $<

$(BUILD)/libvconv.a: $(CORE_OBJS)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/vconv-cli: tools/vconv_cli.c $(BUILD)/libvconv.a
	$(CC) $(CORE_CFLAGS) -o $@ $< $(BUILD)/libvconv.a $(PKG_LIBS) -lm

# a test helper: writes the HDR and Dolby Vision side data the ffmpeg CLI
# cannot, for the tests' inputs
$(BUILD)/vconv-sidedata: tools/vconv_sidedata.c
	@mkdir -p $(dir $@)
	$(CC) $(CORE_CFLAGS) -o $@ $< $(PKG_LIBS)

# The sandbox helper: installed next to the module .so, where the module
# looks for it (vconv_sandbox_helper overrides).  The ASan module's copy
# is a link: the helper itself needs no ASan.
SECCOMP_CFLAGS = $(shell pkg-config --cflags libseccomp 2>/dev/null)
SECCOMP_LIBS   = $(shell pkg-config --libs libseccomp 2>/dev/null)

# -z now: the core's calls into libav are bound once in the helper, not
# again (a symbol lookup and a page copied) in every job's child
SANDBOX_SRCS = tools/vconv_sandbox_main.c tools/vconv_sandbox_warm.c
$(BUILD)/vconv-sandbox: $(SANDBOX_SRCS) tools/vconv_sandbox_warm.h \
	    $(BUILD)/libvconv.a
	$(CC) $(CORE_CFLAGS) $(SECCOMP_CFLAGS) $(LDFLAGS) -Wl,-z,now -o $@ \
	    $(SANDBOX_SRCS) $(BUILD)/libvconv.a $(PKG_LIBS) $(SECCOMP_LIBS) -lm

$(BUILD)/asan/vconv-sandbox: $(BUILD)/vconv-sandbox
	@mkdir -p $(dir $@)
	ln -sf ../vconv-sandbox $@

$(BUILD)/t/%: t/unit/%.c $(wildcard t/unit/*.h) $(BUILD)/libvconv.a
	@mkdir -p $(dir $@)
	$(CC) $(CORE_CFLAGS) -It/unit -o $@ $< $(BUILD)/libvconv.a \
	    $(PKG_LIBS) -lm

unit: deps build
	prove $(UNIT_BINS)

# quiet: the compiler's lines go to build/run-build.log, shown on failure
run: run-deps
	@mkdir -p $(BUILD); echo "vconv: building the module (log: $(BUILD)/run-build.log)"; \
	$(MAKE) --no-print-directory $(RUN_TARGETS) >$(BUILD)/run-build.log 2>&1 \
	    || { tail -40 $(BUILD)/run-build.log; echo "vconv: build failed"; exit 1; }
	@tools/run.sh

test: deps build
	@mkdir -p t/artifacts
	VCONV_BUILD=$(CURDIR)/$(BUILD) \
	    VCONV_ASAN_MODULE=$(CURDIR)/$(BUILD)/asan/ngx_http_vconv_module.so \
	    PERL5LIB=$(CURDIR)/t/lib PERL5OPT=-MVconvTimeout \
	    prove -j2 -It/lib $(TESTS) $(UNIT_BINS)
	@$(MAKE) --no-print-directory test-asan

# The glue's integration tests again with the module built with
# AddressSanitizer (t/lib/VconvNginx.pm: VCONV_ASAN).  Not the tests that
# kill workers with signals on purpose: ASan turns those into aborts.
ASAN_TESTS := t/api_lifecycle.t t/api_upload.t t/api_limits.t t/api_ttl.t \
              t/api_tus.t \
              t/api_errors.t t/api_concurrency.t t/api_http2.t t/multinode.t \
              t/abuse_wait.t t/abuse_metrics.t \
              t/api_presets.t t/api_http2_window.t t/api_fidelity.t

test-asan: build
	VCONV_BUILD=$(CURDIR)/$(BUILD) VCONV_ASAN=1 \
	    VCONV_ASAN_MODULE=$(CURDIR)/$(BUILD)/asan/ngx_http_vconv_module.so \
	    PERL5LIB=$(CURDIR)/t/lib PERL5OPT=-MVconvTimeout \
	    prove -j2 -It/lib $(ASAN_TESTS)

# Debian package (issue 15): dpkg-buildpackage in a copy of the files it is
# built from, under build/deb, so that its build (Debian's flags, its own
# copy of the nginx build kit) and what it writes beside the source tree
# stay out of the checkout.  The copy gets an empty t/: no test is packaged.
# t/deb.t is not part of `make test`: `make test-deb` (CI) runs it.
.PHONY: deb test-deb
DEB_PKGS    += debhelper dpkg-dev lintian debootstrap zstd
TESTS       := $(filter-out t/deb.t,$(TESTS))
DEB_TREE    := Makefile config ngx_http_vconv_module.c src tools html README \
               conf.example debian
DEB_VERSION  = $(shell dpkg-parsechangelog -S Version)
DEB_ARCH     = $(shell dpkg --print-architecture)
DEB          = $(BUILD)/libnginx-mod-http-vconv_$(DEB_VERSION)_$(DEB_ARCH).deb

deb: deps
	@$(MAKE) --no-print-directory $(DEB)

$(BUILD)/libnginx-mod-http-vconv_%.deb: $(shell find $(DEB_TREE) -type f)
	@rm -rf $(BUILD)/deb && mkdir -p $(BUILD)/deb/src/t
	tar -c $(DEB_TREE) | tar -x -C $(BUILD)/deb/src
	cd $(BUILD)/deb/src && env -u MAKEFLAGS -u MAKELEVEL \
	    dpkg-buildpackage -b --no-sign -J$$(nproc) \
	    >$(CURDIR)/$(BUILD)/deb/build.log 2>&1 \
	    || { tail -30 $(CURDIR)/$(BUILD)/deb/build.log; exit 1; }
	cp $(BUILD)/deb/$(notdir $@) $@.tmp && mv -f $@.tmp $@

# the package installed, upgraded and purged in a clean Debian 12 root
test-deb: deb
	VCONV_DEB=$(CURDIR)/$(DEB) PERL5LIB=$(CURDIR)/t/lib \
	    PERL5OPT=-MVconvTimeout VCONV_TEST_TIMEOUT=1800 \
	    prove -v -It/lib t/deb.t

bench: deps build
	@bench/run.sh

# Issue 23's sweep: every file of DIR (or, without DIR, media made by
# tools/vconv_samples.sh) through the ASan module and the ffmpeg CLI;
# one line a file, a summary by class, exit 1 on any DEFECT
.PHONY: conformance
conformance: build
	@VCONV_BUILD=$(CURDIR)/$(BUILD) PERL5LIB=$(CURDIR)/t/lib \
	    tools/conformance.pl $(DIR)

fuzz: deps
	@fuzz/run.sh $${FUZZ_SECONDS:-60}

clean:
	rm -rf $(BUILD)
