# The datapath needs BPF atomics that return a value (fetch_add, fetch_or,
# xchg, cmpxchg): they exist from BPF ISA v3 on, clang 14 defaults to v1.
BPF_CFLAGS += -mcpu=v3
