# pfsync-xdp build. Generic rules: every file dropped into the right folder
# is built without touching this file (see README "Layout").
BUILD ?= build
CC ?= gcc
CLANG ?= clang
ARCH := $(shell uname -m | sed 's/x86_64/x86/;s/aarch64/arm64/')
MULTIARCH := $(shell $(CC) -print-multiarch 2>/dev/null)
STATES_MAX ?= 100000

WARN := -Wall -Wextra -Werror
CFLAGS ?= -O2 -g
CFLAGS += -std=gnu11 $(WARN) -Iinclude -Ilib -D_GNU_SOURCE -DPFSYNC_STATES_MAX=$(STATES_MAX)
SAN_FLAGS := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
LDLIBS_BPF := -lbpf -lelf -lz
LDLIBS_AGENT := -lxdp $(LDLIBS_BPF) -lcrypto
LDLIBS_CTL := $(LDLIBS_BPF) -lpcap

BPF_CFLAGS := -O2 -g -target bpf -D__TARGET_ARCH_$(ARCH) -Iinclude \
	-I/usr/include/$(MULTIARCH) $(WARN) -Wno-unused-function \
	-DPFSYNC_STATES_MAX=$(STATES_MAX)

HDRS := $(wildcard include/*.h lib/*.h agent/*.h tools/*.h bpf/*.h)
BPF_SRCS := $(wildcard bpf/*.bpf.c)
BPF_OBJS := $(patsubst bpf/%.bpf.c,$(BUILD)/%.o,$(BPF_SRCS))
LIB_SRCS := $(wildcard lib/*.c)
LIB_OBJS := $(patsubst %.c,$(BUILD)/obj/%.o,$(LIB_SRCS))
LIB_SAN_OBJS := $(patsubst %.c,$(BUILD)/san/%.o,$(LIB_SRCS))
AGENT_SRCS := $(wildcard agent/*.c)
CTL_SRCS := $(wildcard tools/pfsyncctl/*.c)
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(patsubst tests/unit/%.c,$(BUILD)/tests/unit/%,$(UNIT_SRCS))
PROG_SRCS := $(wildcard tests/prog/test_*.c)
PROG_BINS := $(patsubst tests/prog/%.c,$(BUILD)/tests/prog/%,$(PROG_SRCS))
BENCH_SRCS := $(wildcard bench/*.c)
BENCH_BINS := $(patsubst bench/%.c,$(BUILD)/bench/%,$(BENCH_SRCS))
FUZZ_SRCS := $(wildcard fuzz/fuzz_*.c)
FUZZ_BINS := $(patsubst fuzz/%.c,$(BUILD)/fuzz/%,$(FUZZ_SRCS))
FUZZ_SECONDS ?= 60

PROGRAMS := $(if $(AGENT_SRCS),$(BUILD)/pfsync-agent) $(if $(CTL_SRCS),$(BUILD)/pfsyncctl)

.PHONY: all deps check soak demo demo-nat bench fuzz clean format tests unit prog netns
all: $(BPF_OBJS) $(PROGRAMS)

deps:
	./scripts/deps.sh

$(BUILD)/%.o: bpf/%.bpf.c $(HDRS)
	@mkdir -p $(@D)
	$(CLANG) $(BPF_CFLAGS) -c $< -o $@

$(BUILD)/obj/%.o: %.c $(HDRS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/san/%.o: %.c $(HDRS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(SAN_FLAGS) -c $< -o $@

$(BUILD)/libpfsync.a: $(LIB_OBJS)
	@mkdir -p $(@D)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/libpfsync-san.a: $(LIB_SAN_OBJS)
	@mkdir -p $(@D)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/pfsync-agent: $(patsubst %.c,$(BUILD)/obj/%.o,$(AGENT_SRCS)) $(BUILD)/libpfsync.a
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS_AGENT)

$(BUILD)/pfsyncctl: $(patsubst %.c,$(BUILD)/obj/%.o,$(CTL_SRCS)) $(BUILD)/libpfsync.a
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS_CTL)

# Userspace-only tests run under ASan/UBSan. Agent sources (except main.c)
# are linked in so their logic can be tested with fakes.
AGENT_LIB_SRCS := $(filter-out agent/main.c,$(AGENT_SRCS))
$(BUILD)/tests/unit/%: tests/unit/%.c $(BUILD)/libpfsync-san.a $(patsubst %.c,$(BUILD)/san/%.o,$(AGENT_LIB_SRCS)) $(HDRS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(SAN_FLAGS) -Itests/unit -o $@ $< $(patsubst %.c,$(BUILD)/san/%.o,$(AGENT_LIB_SRCS)) $(BUILD)/libpfsync-san.a -lcmocka $(LDLIBS_AGENT)

$(BUILD)/tests/prog/%: tests/prog/%.c $(wildcard tests/prog/lib*) $(BUILD)/libpfsync.a $(HDRS) $(BPF_OBJS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -Itests/prog -o $@ $< $(wildcard tests/prog/lib*.c) $(BUILD)/libpfsync.a -lcmocka $(LDLIBS_BPF)

# Each bench links every bench/lib/*.c and, when the folder exists, its own
# bench/NAME/*.c (the parts of build/bench/NAME).
BENCH_LIB_SRCS := $(wildcard bench/lib/*.c)
bench_parts = $(wildcard bench/$(1)/*.c bench/$(1)/*.h)
.SECONDEXPANSION:
$(BUILD)/bench/%: bench/%.c $$(call bench_parts,$$*) $(BENCH_LIB_SRCS) $(wildcard bench/lib/*.h) \
		$(BUILD)/libpfsync.a $(HDRS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -Ibench/lib -Ibench/$* -o $@ $< $(wildcard bench/$*/*.c) $(BENCH_LIB_SRCS) \
		$(BUILD)/libpfsync.a $(LDLIBS_AGENT)

$(BUILD)/fuzz/%: fuzz/%.c $(wildcard fuzz/*.h) $(LIB_SRCS) $(AGENT_LIB_SRCS) $(HDRS)
	@mkdir -p $(@D)
	$(CLANG) -std=gnu11 -g -O1 -Iinclude -Ilib -Iagent -D_GNU_SOURCE -DPFSYNC_FUZZ \
		-fsanitize=fuzzer,address,undefined -o $@ $< $(LIB_SRCS) $(AGENT_LIB_SRCS) $(LDLIBS_AGENT)

unit: $(UNIT_BINS)
prog: $(PROG_BINS) all
tests: unit prog all $(BENCH_BINS)

check: deps
	$(MAKE) tests
	./scripts/run-tests.sh

# Not in CI: test_torture.sh at a million connections (issue 12), several
# minutes; SOAK_CONNS is the total over the six attach/ruleset modes.
SOAK_CONNS ?= 1000000
soak: deps
	$(MAKE) tests
	TORTURE_CONNS=$$(($(SOAK_CONNS) / 6)) TORTURE_UDP=2000 TORTURE_PINGS=200 \
		TORTURE_MODES="$${TORTURE_MODES:-agent agent+rules iproute2 iproute2+rules xdp xdp+rules}" \
		timeout --kill-after=10 14400 tests/netns/test_torture.sh

demo: deps
	$(MAKE) all
	./scripts/demo.sh

demo-nat: deps
	$(MAKE) all
	./scripts/demo-nat.sh

bench: deps
	$(MAKE) all $(BENCH_BINS)
	./scripts/run-bench.sh

fuzz: deps
	$(MAKE) $(FUZZ_BINS)
	./scripts/run-fuzz.sh $(FUZZ_SECONDS)

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD)

# Further targets (install, vmcheck, ...) live in their own fragments.
-include mk/*.mk
