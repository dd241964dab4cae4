// SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause)
/*
 * pfsync-xdp agent's table reader (include/pfsync_bulk.h, PFSYNC_ITER_OBJ):
 * a bpf_map_elem iterator over the states map that writes each state, key
 * and value, as one struct pfsync_import_entry into the iterator's
 * seq_file. The agent reads them with read() on the iterator fd, some 180
 * states a call, instead of bpf_map_lookup_batch, which locks each bucket
 * and copies every entry twice (into a kernel buffer, then out).
 *
 * Its own object so that a kernel refusing it costs only this reader: the
 * agent loads it onto the pinned map and falls back to the batch reads when
 * loading or attaching fails (--bulk-read auto).
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "pfsync_bulk.h"
#include "pfsync_common.h"

/* the kernel's iterator context (stable layout; CO-RE relocated anyway) */
struct seq_file;
struct bpf_iter_meta {
	struct seq_file *seq;
	__u64 session_id;
	__u64 seq_num;
} __attribute__((preserve_access_index));

struct bpf_iter__bpf_map_elem {
	struct bpf_iter_meta *meta;
	struct bpf_map *map;
	void *key;
	void *value;
} __attribute__((preserve_access_index));

/* stands in for the pinned map: only its key and value sizes matter here */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1);
	__type(key, struct pfsync_key);
	__type(value, struct pfsync_state_value);
} pfsync_states SEC(".maps");

SEC("iter/bpf_map_elem")
int pfsync_table_iter(struct bpf_iter__bpf_map_elem *ctx)
{
	const struct pfsync_state_value *v = ctx->value;
	const struct pfsync_key *k = ctx->key;
	struct seq_file *seq = ctx->meta->seq;
	__u8 pad[PFSYNC_ITER_KEY_PAD] = {};

	/* the last call of a pass comes without an element */
	if (!k || !v)
		return 0;
	/*
	 * Every state, NOSYNC ones too: the expiry pass and the index read
	 * them. Written straight from the map's element in the layout of
	 * struct pfsync_import_entry; a record that does not fit whole is
	 * taken back by the kernel and waits for the next read.
	 */
	bpf_seq_write(seq, k, sizeof(*k));
	bpf_seq_write(seq, pad, sizeof(pad));
	bpf_seq_write(seq, v, sizeof(*v));
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
