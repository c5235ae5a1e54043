/*-------------------------------------------------------------------------
 *
 * storage_test.c
 *	  Tests of the durable Raft storage (src/cluster/storage.c) outside the
 *	  server: identity, hard state, appends, conflicting tails, torn and
 *	  corrupt tails, snapshots and compaction, errors, and a randomized
 *	  comparison with an in-memory model across reopenings.
 *
 * Prints "ok - ..." / "not ok - ..." lines; run_check.sh numbers them.
 *
 *-------------------------------------------------------------------------
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cluster/storage.h"

static int	failures = 0;
static char base[256];
static int	dir_count = 0;

static void
report(bool ok, const char *desc)
{
	printf("%s - storage: %s\n", ok ? "ok" : "not ok", desc);
	if (!ok)
		failures++;
}

static char *
new_dir(void)
{
	static char path[300];

	snprintf(path, sizeof(path), "%s/d%d", base, ++dir_count);
	return path;
}

static void
rm_dir(const char *dir)
{
	char		cmd[400];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
}

static raft_entry
ent(raft_index index, raft_term term, const char *data)
{
	raft_entry	e;

	e.index = index;
	e.term = term;
	e.type = RAFT_ENTRY_NORMAL;
	e.len = (uint32_t) strlen(data);
	e.data = (uint8_t *) data;
	return e;
}

/* the stored entries as "index@term:data,..." */
static void
describe(dxs_storage *s, char *out, size_t cap)
{
	const raft_entry *e;
	size_t		n;
	size_t		i;
	size_t		used = 0;

	dxs_entries(s, &e, &n);
	out[0] = '\0';
	for (i = 0; i < n && used < cap; i++)
		used += (size_t) snprintf(out + used, cap - used, "%s%llu@%llu:%.*s",
								  i ? "," : "", (unsigned long long) e[i].index,
								  (unsigned long long) e[i].term,
								  (int) e[i].len, (const char *) e[i].data);
}

static bool
has_entries(dxs_storage *s, const char *want)
{
	char		got[4096];

	describe(s, got, sizeof(got));
	if (strcmp(got, want) != 0)
	{
		printf("# want \"%s\"\n#  got \"%s\"\n", want, got);
		return false;
	}
	return true;
}

static dxs_storage *
reopen(dxs_storage *s, const char *dir)
{
	char		err[DXS_ERR_LEN];
	dxs_storage *r;

	dxs_close(s);
	r = dxs_open(dir, err, sizeof(err));
	if (r == NULL)
		printf("# reopen failed: %s\n", err);
	return r;
}

static void
test_identity(void)
{
	char	   *dir = new_dir();
	char		err[DXS_ERR_LEN];
	dxs_identity id;
	dxs_identity got;
	char		path[400];
	FILE	   *f;

	report(dxs_identity_read(dir, &got, err, sizeof(err)) == 0,
		   "no identity in a missing directory");
	memset(&id, 0, sizeof(id));
	id.cluster_id = 0x1234567890abcdefULL;
	id.node_id = 3;
	id.system_id = 7000000000000000001ULL;
	id.founder = true;
	strcpy(id.name, "node_three");
	report(dxs_identity_write(dir, &id, err, sizeof(err)) == 0, "identity written");
	report(dxs_identity_read(dir, &got, err, sizeof(err)) == 1 &&
		   got.cluster_id == id.cluster_id && got.node_id == 3 &&
		   got.system_id == id.system_id && got.founder &&
		   strcmp(got.name, "node_three") == 0,
		   "identity read back");
	report(dxs_identity_write(dir, &id, err, sizeof(err)) < 0 &&
		   strstr(err, "already holds") != NULL,
		   "an identity is never replaced");

	/* flip a byte */
	snprintf(path, sizeof(path), "%s/identity", dir);
	f = fopen(path, "r+b");
	if (f)
	{
		fseek(f, 20, SEEK_SET);
		fputc(0x5a, f);
		fclose(f);
	}
	report(dxs_identity_read(dir, &got, err, sizeof(err)) < 0 &&
		   strstr(err, "corrupt") != NULL,
		   "a corrupt identity is detected");
	rm_dir(dir);
}

static void
test_basic(void)
{
	char	   *dir = new_dir();
	char		err[DXS_ERR_LEN];
	dxs_storage *s = dxs_open(dir, err, sizeof(err));
	raft_hard_state hs;
	raft_entry	e[5];
	bool		ok;

	report(s != NULL, "open creates an empty storage");
	if (s == NULL)
		return;
	dxs_hard_state(s, &hs);
	report(hs.term == 0 && hs.vote == 0 && hs.commit == 0 &&
		   dxs_snapshot(s) == NULL && dxs_last_index(s) == 0,
		   "empty storage: zero hard state, no snapshot, no entries");

	e[0] = ent(1, 1, "a");
	e[1] = ent(2, 1, "bb");
	e[2] = ent(3, 2, "");
	e[3] = ent(4, 2, "dddd");
	e[4] = ent(5, 2, "e");
	ok = dxs_append(s, e, 3) == 0 && dxs_append(s, e + 3, 2) == 0 && dxs_sync(s) == 0;
	hs.term = 2;
	hs.vote = 7;
	hs.commit = 4;
	ok = ok && dxs_set_hard_state(s, &hs) == 0;
	report(ok, "append, sync, hard state");
	s = reopen(s, dir);
	if (s == NULL)
		return;
	dxs_hard_state(s, &hs);
	report(hs.term == 2 && hs.vote == 7 && hs.commit == 4, "hard state survives reopening");
	report(has_entries(s, "1@1:a,2@1:bb,3@2:,4@2:dddd,5@2:e") &&
		   dxs_first_index(s) == 1 && dxs_last_index(s) == 5,
		   "entries survive reopening");

	/* conflicting tail */
	e[0] = ent(4, 3, "X");
	e[1] = ent(5, 3, "Y");
	e[2] = ent(6, 3, "Z");
	ok = dxs_append(s, e, 3) == 0 && dxs_sync(s) == 0;
	report(ok && has_entries(s, "1@1:a,2@1:bb,3@2:,4@3:X,5@3:Y,6@3:Z"),
		   "a conflicting tail is replaced");
	s = reopen(s, dir);
	if (s == NULL)
		return;
	report(has_entries(s, "1@1:a,2@1:bb,3@2:,4@3:X,5@3:Y,6@3:Z"),
		   "the replaced tail is what reopening finds");
	e[0] = ent(2, 4, "short");
	ok = dxs_append(s, e, 1) == 0;
	s = reopen(s, dir);
	if (s == NULL)
		return;
	report(ok && has_entries(s, "1@1:a,2@4:short"), "a shorter tail replaces a longer one");

	/* errors that leave the storage usable */
	e[0] = ent(5, 4, "gap");
	report(dxs_append(s, e, 1) < 0 && strstr(dxs_error(s), "next entry is 3") != NULL,
		   "a gap is refused");
	e[0] = ent(3, 4, "p");
	e[1] = ent(5, 4, "q");
	report(dxs_append(s, e, 2) < 0 && strstr(dxs_error(s), "not consecutive") != NULL,
		   "non-consecutive entries are refused");
	e[0] = ent(3, 4, "ok");
	report(dxs_append(s, e, 1) == 0 && has_entries(s, "1@1:a,2@4:short,3@4:ok"),
		   "the storage stays usable after refused appends");
	dxs_close(s);
	rm_dir(dir);
}

static void
chop(const char *dir, off_t bytes)
{
	char		path[400];
	struct stat st;

	snprintf(path, sizeof(path), "%s/log", dir);
	if (stat(path, &st) == 0 && truncate(path, st.st_size - bytes) != 0)
		printf("# truncate failed: %s\n", strerror(errno));
}

static void
poke(const char *dir, off_t from_end, uint8_t xor)
{
	char		path[400];
	int			fd;
	uint8_t		b;
	off_t		end;

	snprintf(path, sizeof(path), "%s/log", dir);
	fd = open(path, O_RDWR);
	if (fd < 0)
		return;
	end = lseek(fd, 0, SEEK_END);
	if (pread(fd, &b, 1, end - from_end) == 1)
	{
		b ^= xor;
		if (pwrite(fd, &b, 1, end - from_end) != 1)
			printf("# pwrite failed\n");
	}
	close(fd);
}

static void
test_torn(void)
{
	char	   *dir = new_dir();
	char		err[DXS_ERR_LEN];
	dxs_storage *s = dxs_open(dir, err, sizeof(err));
	raft_entry	e[4];
	bool		ok;

	if (s == NULL)
	{
		report(false, "open for torn tails");
		return;
	}
	e[0] = ent(1, 1, "one");
	e[1] = ent(2, 1, "two");
	e[2] = ent(3, 1, "three");
	e[3] = ent(4, 1, "four");
	ok = dxs_append(s, e, 4) == 0 && dxs_sync(s) == 0;
	dxs_close(s);

	chop(dir, 2);				/* torn data of entry 4 */
	s = reopen(NULL, dir);
	report(ok && s != NULL && has_entries(s, "1@1:one,2@1:two,3@1:three"),
		   "a torn last record is cut");
	dxs_close(s);

	chop(dir, 5 + 28 - 3);		/* entry 3's data and part of its header */
	s = reopen(NULL, dir);
	report(s != NULL && has_entries(s, "1@1:one,2@1:two"), "a torn header is cut");
	e[0] = ent(3, 2, "again");
	ok = s != NULL && dxs_append(s, e, 1) == 0 && dxs_sync(s) == 0;
	s = reopen(s, dir);
	report(ok && s != NULL && has_entries(s, "1@1:one,2@1:two,3@2:again"),
		   "appending after a cut tail works");
	dxs_close(s);

	poke(dir, 1, 0x01);			/* a flipped bit in the last record */
	s = reopen(NULL, dir);
	report(s != NULL && has_entries(s, "1@1:one,2@1:two"),
		   "a record with a bad checksum ends the log");
	dxs_close(s);
	rm_dir(dir);
}

static void
test_snapshot(void)
{
	char	   *dir = new_dir();
	char		err[DXS_ERR_LEN];
	dxs_storage *s = dxs_open(dir, err, sizeof(err));
	raft_entry	e[6];
	raft_snapshot snap;
	const raft_snapshot *got;
	uint64_t	before;
	bool		ok;

	if (s == NULL)
	{
		report(false, "open for snapshots");
		return;
	}
	e[0] = ent(1, 1, "a");
	e[1] = ent(2, 1, "b");
	e[2] = ent(3, 2, "c");
	e[3] = ent(4, 2, "d");
	e[4] = ent(5, 3, "e");
	e[5] = ent(6, 3, "f");
	ok = dxs_append(s, e, 6) == 0 && dxs_sync(s) == 0;
	before = dxs_log_bytes(s);

	memset(&snap, 0, sizeof(snap));
	snap.index = 4;
	snap.term = 2;
	snap.config.n = 3;
	snap.config.voters[0] = 1;
	snap.config.voters[1] = 2;
	snap.config.voters[2] = 9;
	snap.data = (uint8_t *) "STATE";
	snap.len = 5;
	ok = ok && dxs_save_snapshot(s, &snap) == 0;
	report(ok && has_entries(s, "5@3:e,6@3:f") && dxs_log_bytes(s) < before,
		   "compaction keeps the entries after the snapshot and shrinks the log");
	s = reopen(s, dir);
	if (s == NULL)
		return;
	got = dxs_snapshot(s);
	report(got != NULL && got->index == 4 && got->term == 2 && got->config.n == 3 &&
		   got->config.voters[2] == 9 && got->len == 5 &&
		   memcmp(got->data, "STATE", 5) == 0 && has_entries(s, "5@3:e,6@3:f"),
		   "snapshot and remaining entries survive reopening");

	/* a conflicting tail right after the snapshot */
	e[0] = ent(5, 4, "E");
	ok = dxs_append(s, e, 1) == 0;
	s = reopen(s, dir);
	report(ok && s != NULL && has_entries(s, "5@4:E"), "truncation right after a snapshot");
	if (s == NULL)
		return;

	/* a snapshot from the leader that does not match the log replaces it */
	snap.index = 5;
	snap.term = 5;
	snap.data = (uint8_t *) "NEW";
	snap.len = 3;
	ok = dxs_save_snapshot(s, &snap) == 0;
	report(ok && has_entries(s, "") && dxs_last_index(s) == 0,
		   "a snapshot whose last entry differs drops the whole log");
	e[0] = ent(5, 5, "old");
	report(dxs_append(s, e, 1) < 0, "entries covered by the snapshot are refused");
	e[0] = ent(6, 5, "g");
	ok = dxs_append(s, e, 1) == 0 && dxs_sync(s) == 0;
	s = reopen(s, dir);
	report(ok && s != NULL && has_entries(s, "6@5:g") && dxs_snapshot(s)->index == 5,
		   "the log continues after an installed snapshot");
	if (s == NULL)
		return;

	/* a snapshot beyond the log (installed from the leader) */
	snap.index = 20;
	snap.term = 6;
	snap.len = 0;
	ok = dxs_save_snapshot(s, &snap) == 0;
	s = reopen(s, dir);
	report(ok && s != NULL && has_entries(s, "") && dxs_snapshot(s)->index == 20 &&
		   dxs_snapshot(s)->len == 0,
		   "a snapshot beyond the log empties it");
	dxs_close(s);
	rm_dir(dir);
}

static void
test_errors(void)
{
	char	   *dir = new_dir();
	char		path[400];
	char		err[DXS_ERR_LEN];
	FILE	   *f;
	dxs_storage *s;

	f = fopen(dir, "w");
	if (f)
		fclose(f);
	s = dxs_open(dir, err, sizeof(err));
	report(s == NULL && strstr(err, "not a directory") != NULL,
		   "a file in place of the directory is an error");
	unlink(dir);

	s = dxs_open(dir, err, sizeof(err));
	dxs_close(s);
	snprintf(path, sizeof(path), "%s/log", dir);
	f = fopen(path, "wb");
	if (f)
	{
		fputs("GARBAGE!", f);
		fclose(f);
	}
	s = dxs_open(dir, err, sizeof(err));
	report(s == NULL && strstr(err, "not a distx Raft log") != NULL,
		   "a foreign log file is refused");
	snprintf(path, sizeof(path), "%s/hardstate", dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/log", dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/hardstate", dir);
	f = fopen(path, "wb");
	if (f)
	{
		fputs("short", f);
		fclose(f);
	}
	s = dxs_open(dir, err, sizeof(err));
	report(s == NULL && strstr(err, "corrupt") != NULL, "a corrupt hard state is refused");
	rm_dir(dir);
}

/*
 * Random operations against a model: appends (often overwriting a tail),
 * snapshots, reopenings, torn writes of unsynced data.
 */
typedef struct model
{
	raft_index	first;			/* index of ents[0] */
	size_t		n;
	raft_term	terms[4096];
	char		data[4096][8];
	raft_index	snap_index;
	raft_term	snap_term;
} model;

static uint64_t rs = 88172645463325252ULL;

static uint64_t
rnd(void)
{
	rs ^= rs << 13;
	rs ^= rs >> 7;
	rs ^= rs << 17;
	return rs;
}

static bool
model_matches(dxs_storage *s, const model *m)
{
	const raft_entry *e;
	size_t		n;
	size_t		i;
	const raft_snapshot *sn = dxs_snapshot(s);

	dxs_entries(s, &e, &n);
	if (n != m->n)
		return false;
	for (i = 0; i < n; i++)
		if (e[i].index != m->first + i || e[i].term != m->terms[i] ||
			e[i].len != strlen(m->data[i]) ||
			memcmp(e[i].data, m->data[i], e[i].len) != 0)
			return false;
	if (m->snap_index == 0)
		return sn == NULL;
	return sn != NULL && sn->index == m->snap_index && sn->term == m->snap_term;
}

static void
test_random(void)
{
	char	   *dir = new_dir();
	char		err[DXS_ERR_LEN];
	dxs_storage *s = dxs_open(dir, err, sizeof(err));
	model	   *m = calloc(1, sizeof(model));
	int			op;
	bool		ok = s != NULL && m != NULL;
	raft_term	term = 1;

	if (m)
		m->first = 1;
	for (op = 0; ok && op < 3000; op++)
	{
		int			what = (int) (rnd() % 10);

		if (what < 6)
		{
			/* append k entries starting somewhere in the last few */
			raft_index last = m->n ? m->first + m->n - 1 : m->snap_index;
			raft_index lo = m->n ? m->first : m->snap_index + 1;
			raft_index start = last + 1 - (rnd() % 3 == 0 ? rnd() % 4 : 0);
			size_t		k = 1 + rnd() % 5;
			raft_entry	e[5];
			char		bufs[5][8];
			size_t		i;

			if (start < lo)
				start = lo;
			if (m->n + k + 8 >= 4096)
				continue;
			if (start <= last)
				term++;			/* an overwrite comes from a newer term */
			for (i = 0; i < k; i++)
			{
				snprintf(bufs[i], sizeof(bufs[i]), "%x", (unsigned) (rnd() & 0xfffff));
				e[i] = ent(start + i, term, bufs[i]);
			}
			if (dxs_append(s, e, k) < 0)
			{
				printf("# append: %s\n", dxs_error(s));
				ok = false;
				break;
			}
			if (m->n == 0)
				m->first = start;
			m->n = (size_t) (start - m->first);
			for (i = 0; i < k; i++)
			{
				m->terms[m->n] = term;
				strcpy(m->data[m->n], bufs[i]);
				m->n++;
			}
			if (rnd() % 2)
				ok = dxs_sync(s) == 0;
		}
		else if (what < 7 && m->n > 2)
		{
			/* snapshot at some index in the log */
			raft_snapshot snap;
			size_t		at = (size_t) (rnd() % (m->n - 1));

			memset(&snap, 0, sizeof(snap));
			snap.index = m->first + at;
			snap.term = m->terms[at];
			snap.config.n = 1;
			snap.config.voters[0] = 1;
			snap.data = (uint8_t *) "s";
			snap.len = 1;
			if (dxs_sync(s) < 0 || dxs_save_snapshot(s, &snap) < 0)
			{
				printf("# snapshot: %s\n", dxs_error(s));
				ok = false;
				break;
			}
			memmove(m->terms, m->terms + at + 1, (m->n - at - 1) * sizeof(raft_term));
			memmove(m->data, m->data + at + 1, (m->n - at - 1) * 8);
			m->n -= at + 1;
			m->first = snap.index + 1;
			m->snap_index = snap.index;
			m->snap_term = snap.term;
		}
		else if (what < 9)
		{
			ok = dxs_sync(s) == 0;
			s = reopen(s, dir);
			ok = ok && s != NULL && model_matches(s, m);
			if (!ok)
				printf("# mismatch after reopening at op %d\n", op);
		}
		else
			ok = model_matches(s, m);
	}
	report(ok, "3000 random operations agree with the model across reopenings");
	dxs_close(s);
	free(m);
	rm_dir(dir);
}

int
main(void)
{
	const char *tmp = getenv("TMPDIR");

	snprintf(base, sizeof(base), "%s/distx_storage_test.XXXXXX", tmp ? tmp : "/tmp");
	if (mkdtemp(base) == NULL)
	{
		printf("not ok - storage: could not create a temporary directory\n");
		return 1;
	}
	test_identity();
	test_basic();
	test_torn();
	test_snapshot();
	test_errors();
	test_random();
	rm_dir(base);
	return failures ? 1 : 0;
}
