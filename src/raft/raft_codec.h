/*-------------------------------------------------------------------------
 *
 * raft_codec.h
 *	  Raft messages and their stable, versioned binary encoding.
 *
 * Wire format, version 1 (all integers little-endian):
 *
 *	offset  size
 *	0       2     magic 0xD7 0x52 ("distx raft")
 *	2       1     version (1)
 *	3       1     type (RAFT_MSG_*)
 *	4       1     flags (RAFT_MSGF_*)
 *	5       3     reserved, must be zero
 *	8       8*7   from, to, term, log_term, index, commit, hint
 *	64      4     n_entries (APPEND only, else 0)
 *	68      ...   n_entries x { term u64, index u64, type u8, len u32, data }
 *	        ...   SNAPSHOT only: index u64, term u64, n_voters u32,
 *	              voters u64 x n, len u32, data
 *	end-4   4     CRC-32C of everything before it
 *
 * A decoder of version 1 rejects any other version, unknown type or flag,
 * nonzero reserved bytes, counts beyond the buffer, inconsistent entries
 * (indexes must follow "index", terms must not decrease nor exceed the
 * message term, config payloads must decode), trailing bytes and a bad
 * checksum.  A later version can add fields after the version byte; old
 * nodes then refuse such messages instead of misreading them.
 *
 *-------------------------------------------------------------------------
 */
#ifndef DISTX_RAFT_CODEC_H
#define DISTX_RAFT_CODEC_H

#include "raft.h"

#define RAFT_WIRE_VERSION		1
#define RAFT_WIRE_MAGIC0		0xD7
#define RAFT_WIRE_MAGIC1		0x52
#define RAFT_WIRE_HEADER		68
#define RAFT_WIRE_ENTRY_HEADER	21
#define RAFT_WIRE_MAX_ENTRIES	65536	/* per message */
#define RAFT_WIRE_MAX_DATA		(64u * 1024 * 1024)	/* per entry */
#define RAFT_WIRE_MAX_SNAPSHOT	(1024u * 1024 * 1024)	/* snapshot data */

typedef enum raft_msg_type
{
	RAFT_MSG_APPEND = 1,		/* index/log_term = prev entry; entries;
								 * commit */
	RAFT_MSG_APPEND_RESP = 2,	/* ok: index = last matching index;
								 * reject: index = rejected prev index,
								 * hint/log_term = follower's guess */
	RAFT_MSG_VOTE = 3,			/* index/log_term = candidate's last entry */
	RAFT_MSG_VOTE_RESP = 4,		/* REJECT flag */
	RAFT_MSG_PREVOTE = 5,		/* term = the term the sender would take */
	RAFT_MSG_PREVOTE_RESP = 6,
	RAFT_MSG_HEARTBEAT = 7,		/* commit = min(commit, follower's match) */
	RAFT_MSG_HEARTBEAT_RESP = 8,
	RAFT_MSG_SNAPSHOT = 9,		/* snapshot */
	RAFT_MSG_TIMEOUT_NOW = 10	/* leadership transfer: campaign now */
} raft_msg_type;

#define RAFT_MSG_TYPE_MAX		10

#define RAFT_MSGF_REJECT		0x01
#define RAFT_MSGF_TRANSFER		0x02	/* vote request caused by a transfer */
#define RAFT_MSGF_ALL			0x03

typedef struct raft_message
{
	uint8_t		type;
	uint8_t		flags;
	raft_id		from;
	raft_id		to;
	raft_term	term;
	raft_term	log_term;
	raft_index	index;
	raft_index	commit;
	raft_index	hint;
	uint32_t	n_entries;
	raft_entry *entries;
	raft_snapshot snapshot;		/* SNAPSHOT only */
} raft_message;

extern const char *raft_msg_type_name(int type);

/* Exact encoded size; 0 if the message cannot be encoded (limits). */
extern size_t raft_msg_encoded_size(const raft_message *m);

/* Encode into buf (cap >= encoded size); returns bytes written or 0. */
extern size_t raft_msg_encode(const raft_message *m, uint8_t *buf, size_t cap);

/*
 * Decode and validate.  On success m->entries is an array allocated with
 * alloc (NULL if no entries) whose data pointers, like m->snapshot.data,
 * point INTO buf: buf must outlive m.  Free with raft_msg_free_decoded().
 * Returns RAFT_OK, RAFT_EDECODE or RAFT_ENOMEM; never reads outside buf.
 */
extern int	raft_msg_decode(const uint8_t *buf, size_t len, raft_message *m,
							const raft_allocator *alloc);
extern void raft_msg_free_decoded(raft_message *m, const raft_allocator *alloc);

/* Short human-readable form for traces. */
extern void raft_msg_describe(const raft_message *m, char *out, size_t cap);

/* CRC-32C (Castagnoli). */
extern uint32_t raft_crc32c(uint32_t crc, const uint8_t *buf, size_t len);

#endif							/* DISTX_RAFT_CODEC_H */
