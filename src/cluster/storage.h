/*-------------------------------------------------------------------------
 *
 * storage.h
 *	  Durable storage of the Raft node of this server: its identity, hard
 *	  state (term, vote, commit), log and latest snapshot, as files in one
 *	  directory ($PGDATA/pg_distx).
 *
 * Plain C99 without PostgreSQL headers, like the Raft core, so that it is
 * unit-tested outside the server (test/raft/storage_test.c).  Every
 * function returns 0 on success or -1 with a message in the storage's
 * error buffer (dxs_error()); the caller in the server turns that into an
 * ERROR or FATAL ("stops loudly"): after a failed write or fsync nothing
 * may be assumed about what reached the disk, so the caller must not go on
 * with the in-memory state.  fsync() is called directly: PostgreSQL's
 * helper does nothing with fsync = off, and Raft's promises depend on it.
 *
 * Files (all integers little-endian, every record with a CRC-32C):
 *
 *	identity	cluster id, node id, founder flag, this node's name and the
 *				system identifier of the data directory (written once,
 *				atomically)
 *	hardstate	term, vote, commit (replaced atomically: write a temporary
 *				file, fsync it, rename it over, fsync the directory)
 *	snapshot	index, term, configuration and the state machine's bytes
 *				(replaced atomically like hardstate)
 *	log			append-only records, one per entry, consecutive indexes;
 *				a conflicting tail is cut with ftruncate; compaction
 *				rewrites the file without the entries a snapshot covers
 *				(temporary file + rename).  A torn last record (a crash in
 *				the middle of an append that was never fsync'ed, so never
 *				acknowledged) is cut when the log is opened.
 *
 *-------------------------------------------------------------------------
 */
#ifndef DISTX_CLUSTER_STORAGE_H
#define DISTX_CLUSTER_STORAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "raft/raft.h"

#define DXS_NAME_LEN	64		/* node name, NUL included */
#define DXS_ERR_LEN		512

typedef struct dxs_identity
{
	uint64_t	cluster_id;
	raft_id		node_id;
	uint64_t	system_id;		/* of the data directory that holds it */
	bool		founder;		/* made by cluster_init: bootstraps entry 1 */
	char		name[DXS_NAME_LEN]; /* the server name other nodes use */
} dxs_identity;

typedef struct dxs_storage dxs_storage;

/*
 * Identity: read returns 1 and fills *id if the file exists, 0 if it does
 * not, -1 on error (unreadable, corrupt).  Write creates the directory if
 * needed and refuses to replace an existing identity.
 */
extern int	dxs_identity_read(const char *dir, dxs_identity *id,
							  char *err, size_t errlen);
extern int	dxs_identity_write(const char *dir, const dxs_identity *id,
							   char *err, size_t errlen);

/*
 * Open (creating the directory and empty files if needed) and load what is
 * stored.  NULL on error, with the message in err.
 */
extern dxs_storage *dxs_open(const char *dir, char *err, size_t errlen);
extern void dxs_close(dxs_storage *s);
extern const char *dxs_error(const dxs_storage *s);

/* What was loaded by dxs_open() (and kept up to date by the writes). */
extern void dxs_hard_state(const dxs_storage *s, raft_hard_state *hs);

/* The latest snapshot, or NULL; data stays owned by the storage. */
extern const raft_snapshot *dxs_snapshot(const dxs_storage *s);

/*
 * The stored entries after the snapshot, in order.  The array and the data
 * stay owned by the storage and valid until the next write call.
 */
extern int	dxs_entries(dxs_storage *s, const raft_entry **entries,
						size_t *n);
extern raft_index dxs_first_index(const dxs_storage *s);	/* 0: empty */
extern raft_index dxs_last_index(const dxs_storage *s); /* 0: empty */

/*
 * Writes.  Append drops stored entries with index >= entries[0].index, then
 * appends (not yet durable: call dxs_sync).  The new entries must follow
 * the stored ones (or the snapshot) without a gap.
 */
extern int	dxs_append(dxs_storage *s, const raft_entry *entries, size_t n);
extern int	dxs_sync(dxs_storage *s);
extern int	dxs_set_hard_state(dxs_storage *s, const raft_hard_state *hs);

/*
 * Save a snapshot durably, then drop the log entries it covers: all of
 * them if the log does not contain the snapshot's last entry with the same
 * term (a snapshot received from the leader replaces the log), else those
 * up to snap->index.
 */
extern int	dxs_save_snapshot(dxs_storage *s, const raft_snapshot *snap);

/* bytes in the log file, for deciding when to compact */
extern uint64_t dxs_log_bytes(const dxs_storage *s);

#endif							/* DISTX_CLUSTER_STORAGE_H */
