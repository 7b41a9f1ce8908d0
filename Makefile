# Thin wrapper: the build is meson + ninja.  `make demo` and `make check`
# install the Debian packages they need when missing (as root).
BUILD     ?= build
SANBUILD  ?= build-san
TSANBUILD ?= build-tsan
FUZZBUILD ?= build-fuzz
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= $(notdir $(wildcard tests/fuzz/corpus/*))
# gnuplot-nox: the plots of livemig bench --matrix (and its test).
DEPS      := gcc pkg-config meson ninja-build python3 zstd \
             zlib1g-dev libzstd-dev libisal-dev libxxhash-dev liblz4-dev \
             libjson-c-dev libgnutls28-dev gnutls-bin \
             qemu-system-x86 gnuplot-nox
# make fuzz only: clang and its runtimes (libFuzzer, the sanitizers).
FUZZ_DEPS := clang libclang-rt-dev
# make check only: a real QEMU for the tests that run one (TCG, no KVM needed).
TEST_DEPS := qemu-system-x86

.PHONY: all deps fuzz-deps test-deps build check demo fuzz clean

all: build

deps fuzz-deps test-deps: PKGS = $(if $(filter fuzz-deps,$@),$(FUZZ_DEPS),$(if $(filter test-deps,$@),$(TEST_DEPS),$(DEPS)))
deps fuzz-deps test-deps:
	@missing=$$(for p in $(PKGS); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "make: installing Debian packages:" $$missing; \
		if [ "$$(id -u)" != 0 ]; then echo "make: run as root, or: apt-get install" $$missing; exit 1; fi; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

build: deps
	@[ -f $(BUILD)/build.ninja ] || meson setup $(BUILD) -Dwerror=true
	ninja -C $(BUILD)

# Every test; then, with smaller migrations, every test again under
# AddressSanitizer + UndefinedBehaviorSanitizer, and the threaded ones
# (suite tsan) under ThreadSanitizer - gcc's own: its runtime, libtsan, comes
# with gcc.  The TSan build's test setup (tests/meson.build) sets
# TSAN_OPTIONS: a report fails the test, tests/tsan.supp suppresses the
# races live migration has by design.  The last line is the summary of all
# three builds.
check: build test-deps
	@[ -f $(SANBUILD)/build.ninja ] || meson setup $(SANBUILD) -Dwerror=true \
		-Dbuildtype=debug -Db_sanitize=address,undefined -Db_lundef=false
	ninja -C $(SANBUILD)
	@[ -f $(TSANBUILD)/build.ninja ] || meson setup $(TSANBUILD) -Dwerror=true \
		-Dbuildtype=debug -Db_sanitize=thread -Db_lundef=false
	ninja -C $(TSANBUILD)
	-meson test -C $(BUILD) --print-errorlogs
	-UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 LM_TEST_MEM=67108864 \
		meson test -C $(SANBUILD) --print-errorlogs --no-suite bench
	-LM_TEST_MEM=67108864 meson test -C $(TSANBUILD) --print-errorlogs --suite tsan
	@python3 tests/summary.py $(BUILD) $(SANBUILD) $(TSANBUILD)

demo: build
	$(BUILD)/livemig bench

# Each fuzz target (tests/fuzz, one per corpus directory) for FUZZ_SECONDS
# under libFuzzer with AddressSanitizer + UndefinedBehaviorSanitizer,
# one after the other.  The committed corpus is only read: what libFuzzer
# finds goes to $(FUZZBUILD)/corpus/<target>, crashes to
# $(FUZZBUILD)/crashes/, each target's log to $(FUZZBUILD)/logs/.  A crash
# input belongs in tests/fuzz/corpus/<target>/ once the bug is fixed.
fuzz: deps fuzz-deps
	@[ -f $(FUZZBUILD)/build.ninja ] || CC=clang meson setup $(FUZZBUILD) -Dwerror=true \
		-Dbuildtype=debugoptimized -Dfuzzing=true -Db_sanitize=address,undefined \
		-Db_lundef=false
	ninja -C $(FUZZBUILD) fuzzers
	@mkdir -p $(FUZZBUILD)/crashes $(FUZZBUILD)/logs; failed=; \
	for t in $(FUZZ_TARGETS); do \
		mkdir -p $(FUZZBUILD)/corpus/$$t; \
		echo "fuzz-$$t: $(FUZZ_SECONDS) s"; \
		if ! $(FUZZBUILD)/tests/fuzz/fuzz-$$t -max_total_time=$(FUZZ_SECONDS) \
			-print_final_stats=1 -artifact_prefix=$(FUZZBUILD)/crashes/$$t- \
			$(FUZZBUILD)/corpus/$$t tests/fuzz/corpus/$$t \
			> $(FUZZBUILD)/logs/$$t.log 2>&1; then \
			failed="$$failed $$t"; tail -30 $(FUZZBUILD)/logs/$$t.log; \
		fi; \
		grep -E '^#[0-9]+[[:space:]]+DONE' \
			$(FUZZBUILD)/logs/$$t.log | sed 's/^/  /'; \
	done; \
	if [ -n "$$failed" ]; then echo "fuzz: crashed:$$failed (inputs in $(FUZZBUILD)/crashes)"; \
		exit 1; fi

clean:
	rm -rf $(BUILD) $(SANBUILD) $(TSANBUILD) $(FUZZBUILD)
