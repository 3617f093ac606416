# vconv: deps, build, run, test, bench.
#
#   make run    Debian's nginx with the module on http://127.0.0.1:8080
#   make test   every test, ending with prove's summary

SHELL      := /bin/bash
NGX_SRC    ?= /usr/share/nginx/src
BUILD      := build
VAR        := var
CC         ?= cc

PKGS_LIBAV := libavformat libavcodec libavfilter libswscale libswresample \
              libavutil
DEB_PKGS   := nginx nginx-dev libavformat-dev libavcodec-dev \
              libavfilter-dev libswscale-dev libswresample-dev \
              libavutil-dev pkg-config ffmpeg libpcre2-dev libssl-dev \
              zlib1g-dev gcc make perl curl chromium valgrind wrk \
              clang libclang-rt-14-dev llvm time libseccomp-dev

CORE_SRCS  := $(sort $(wildcard src/vconv_*.c))
CORE_HDRS  := $(wildcard src/vconv*.h)
CORE_OBJS  := $(patsubst src/%.c,$(BUILD)/core/%.o,$(CORE_SRCS))
GLUE_SRCS  := ngx_http_vconv_module.c $(wildcard src/ngx_http_vconv_*.c) \
              $(wildcard src/ngx_http_vconv_*.h)
UNIT_SRCS  := $(sort $(wildcard t/unit/test_*.c))
UNIT_BINS  := $(patsubst t/unit/%.c,$(BUILD)/t/%,$(UNIT_SRCS))

LIBAV_CFLAGS = $(shell pkg-config --cflags $(PKGS_LIBAV) 2>/dev/null)
LIBAV_LIBS   = $(shell pkg-config --libs $(PKGS_LIBAV) 2>/dev/null)
CFLAGS     ?= -O2 -g
WFLAGS     := -Wall -Wextra -Werror -Wno-unused-parameter
CORE_CFLAGS = $(CFLAGS) $(WFLAGS) -std=gnu11 -pthread -Isrc $(LIBAV_CFLAGS)

.PHONY: all build deps web-deps run test unit bench fuzz asan clean

all: build

build: $(BUILD)/ngx_http_vconv_module.so $(BUILD)/vconv-cli $(UNIT_BINS) \
       $(BUILD)/asan/ngx_http_vconv_module.so $(BUILD)/vconv-sandbox \
       $(BUILD)/asan/vconv-sandbox

# Installs only what is missing; apt-get update only when something is.
deps:
	@missing=""; \
	for p in $(DEB_PKGS); do \
	    dpkg-query -W -f='$${Status}' $$p 2>/dev/null \
	        | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	    echo "deps: installing$$missing"; \
	    export DEBIAN_FRONTEND=noninteractive; \
	    apt-get update -qq && apt-get install -y -qq --no-install-recommends \
	        $$missing >/dev/null || exit 1; \
	fi
	@$(MAKE) --no-print-directory web-deps

# npm ci only when the lock changed since the last install
web-deps:
	@if [ -f t/web/package.json ] \
	    && ! cmp -s t/web/package-lock.json t/web/node_modules/.vconv-lock; \
	then \
	    cd t/web && npm ci --no-audit --no-fund --loglevel=error \
	    && cp package-lock.json node_modules/.vconv-lock; \
	fi

# The module is built in a copy of Debian's nginx build kit, configured
# with the flags Debian's nginx was built with, so the .so loads into it.
# nginx's objs/Makefile lists the module's sources as configure saw them:
# a new or removed file in src/ means configuring again.
ALL_SRCS   := $(sort $(wildcard src/*.c))
$(shell mkdir -p $(BUILD) && echo "$(ALL_SRCS)" | cmp -s - $(BUILD)/srcs \
    || echo "$(ALL_SRCS)" > $(BUILD)/srcs)

$(BUILD)/nginx/objs/Makefile: config $(BUILD)/srcs
	@rm -rf $(BUILD)/nginx && mkdir -p $(BUILD) \
	    && cp -r $(NGX_SRC) $(BUILD)/nginx
	cd $(BUILD)/nginx && source ./conf_flags \
	    && ./configure "$${NGX_CONF_FLAGS[@]}" \
	        --with-cc-opt="-Wextra -Wno-unused-parameter -Wno-missing-field-initializers" \
	        --add-dynamic-module=$(CURDIR) >configure.log \
	    || { tail -20 $(BUILD)/nginx/configure.log; exit 1; }

$(BUILD)/ngx_http_vconv_module.so: $(BUILD)/nginx/objs/Makefile $(GLUE_SRCS) \
        $(CORE_SRCS) $(CORE_HDRS)
	$(MAKE) --no-print-directory -C $(BUILD)/nginx -f objs/Makefile modules
	install -m 755 $(BUILD)/nginx/objs/ngx_http_vconv_module.so $@.tmp && mv -f $@.tmp $@

# The same module with AddressSanitizer, for the hostile-input tests: load
# it into Debian's nginx with LD_PRELOAD=$$(gcc -print-file-name=libasan.so)
ASAN_FLAGS := -fsanitize=address -fno-omit-frame-pointer

$(BUILD)/nginx-asan/objs/Makefile: config $(BUILD)/srcs
	@rm -rf $(BUILD)/nginx-asan && mkdir -p $(BUILD) \
	    && cp -r $(NGX_SRC) $(BUILD)/nginx-asan
	cd $(BUILD)/nginx-asan && source ./conf_flags \
	    && ./configure "$${NGX_CONF_FLAGS[@]}" \
	        --with-cc-opt="-Wextra -Wno-unused-parameter -Wno-missing-field-initializers $(ASAN_FLAGS)" \
	        --with-ld-opt="$(ASAN_FLAGS)" \
	        --add-dynamic-module=$(CURDIR) >configure.log \
	    || { tail -20 $(BUILD)/nginx-asan/configure.log; exit 1; }

$(BUILD)/asan/ngx_http_vconv_module.so: $(BUILD)/nginx-asan/objs/Makefile \
        $(GLUE_SRCS) $(CORE_SRCS) $(CORE_HDRS)
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
	$(CC) $(CORE_CFLAGS) -o $@ $< $(BUILD)/libvconv.a $(LIBAV_LIBS) -lm

# The sandbox helper: installed next to the module .so, where the module
# looks for it (vconv_sandbox_helper overrides).  The ASan module's copy
# is a link: the helper itself needs no ASan.
SECCOMP_CFLAGS = $(shell pkg-config --cflags libseccomp 2>/dev/null)
SECCOMP_LIBS   = $(shell pkg-config --libs libseccomp 2>/dev/null)

$(BUILD)/vconv-sandbox: tools/vconv_sandbox_main.c $(BUILD)/libvconv.a
	$(CC) $(CORE_CFLAGS) $(SECCOMP_CFLAGS) -o $@ $< $(BUILD)/libvconv.a \
	    $(LIBAV_LIBS) $(SECCOMP_LIBS) -lm

$(BUILD)/asan/vconv-sandbox: $(BUILD)/vconv-sandbox
	@mkdir -p $(dir $@)
	ln -sf ../vconv-sandbox $@

$(BUILD)/t/%: t/unit/%.c t/unit/tap.h $(BUILD)/libvconv.a
	@mkdir -p $(dir $@)
	$(CC) $(CORE_CFLAGS) -It/unit -o $@ $< $(BUILD)/libvconv.a \
	    $(LIBAV_LIBS) -lm

unit: deps build
	prove $(UNIT_BINS)

run: deps build
	@tools/run.sh

test: deps build
	@mkdir -p t/artifacts
	VCONV_BUILD=$(CURDIR)/$(BUILD) \
	    VCONV_ASAN_MODULE=$(CURDIR)/$(BUILD)/asan/ngx_http_vconv_module.so \
	    prove -j2 -It/lib t/*.t $(UNIT_BINS)

bench: deps build
	@bench/run.sh

fuzz: deps
	@fuzz/run.sh $${FUZZ_SECONDS:-60}

clean:
	rm -rf $(BUILD)
