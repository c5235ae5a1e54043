/*-------------------------------------------------------------------------
 *
 * storage.c
 *	  Durable Raft storage: identity, hard state, log and snapshot files.
 *	  See storage.h for the files and the error model.
 *
 * The whole log after the snapshot is also kept in memory (the Raft core
 * keeps it in memory too, and compaction keeps it short), with the file
 * offset of every record, so that cutting a conflicting tail is one
 * ftruncate() and restarting needs one sequential read.
 *
 * Record layout of the log file, after an 8-byte file header "DXLOG001":
 *
 *	u32 data length, u32 CRC-32C (of the record with this field zeroed),
 *	u64 term, u64 index, u8 type, 3 zero bytes, data
 *
 * Copyright (c) distx authors
 *
 *-------------------------------------------------------------------------
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "cluster/storage.h"
#include "raft/raft_codec.h"

#define LOG_MAGIC		"DXLOG001"
#define LOG_MAGIC_LEN	8
#define REC_HDR			28

#define ID_MAGIC		0x44584944u /* "DXID" */
#define HS_MAGIC		0x44584853u /* "DXHS" */
#define SN_MAGIC		0x4458534Eu /* "DXSN" */
#define FILE_VERSION	1

#define ID_FILE			"identity"
#define HS_FILE			"hardstate"
#define SN_FILE			"snapshot"
#define LOG_FILE		"log"

struct dxs_storage
{
	char	   *dir;
	char		err[DXS_ERR_LEN];
	bool		broken;			/* a write failed: refuse everything */

	raft_hard_state hs;

	bool		has_snap;
	raft_snapshot snap;			/* data malloc'ed */

	int			log_fd;
	uint64_t	log_size;
	bool		dirty;			/* written since the last fsync */

	raft_entry *ents;			/* data of each malloc'ed */
	uint64_t   *offs;			/* file offset of each record */
	size_t		n;
	size_t		cap;
};

/* ------------------------------------------------------------------ */

static void
put_u32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t) v;
	p[1] = (uint8_t) (v >> 8);
	p[2] = (uint8_t) (v >> 16);
	p[3] = (uint8_t) (v >> 24);
}

static void
put_u64(uint8_t *p, uint64_t v)
{
	put_u32(p, (uint32_t) v);
	put_u32(p + 4, (uint32_t) (v >> 32));
}

static uint32_t
get_u32(const uint8_t *p)
{
	return (uint32_t) p[0] | ((uint32_t) p[1] << 8) |
		((uint32_t) p[2] << 16) | ((uint32_t) p[3] << 24);
}

static uint64_t
get_u64(const uint8_t *p)
{
	return (uint64_t) get_u32(p) | ((uint64_t) get_u32(p + 4) << 32);
}

static void
set_err(char *err, size_t errlen, const char *fmt,...)
__attribute__((format(printf, 3, 4)));

static void
set_err(char *err, size_t errlen, const char *fmt,...)
{
	va_list		ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static char *
path_join(const char *dir, const char *name)
{
	size_t		len = strlen(dir) + strlen(name) + 2;
	char	   *p = malloc(len);

	if (p != NULL)
		snprintf(p, len, "%s/%s", dir, name);
	return p;
}

static int
write_all(int fd, const uint8_t *buf, size_t len)
{
	while (len > 0)
	{
		ssize_t		w = write(fd, buf, len);

		if (w < 0)
		{
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (w == 0)
		{
			errno = ENOSPC;
			return -1;
		}
		buf += w;
		len -= (size_t) w;
	}
	return 0;
}

/* read a whole file into a malloc'ed buffer; 1 found, 0 absent, -1 error */
static int
read_file(const char *path, uint8_t **buf, size_t *len, char *err, size_t errlen)
{
	int			fd = open(path, O_RDONLY);
	struct stat st;
	uint8_t    *b;
	size_t		got = 0;

	*buf = NULL;
	*len = 0;
	if (fd < 0)
	{
		if (errno == ENOENT)
			return 0;
		set_err(err, errlen, "could not open file \"%s\": %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) < 0)
	{
		set_err(err, errlen, "could not stat file \"%s\": %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	b = malloc((size_t) st.st_size + 1);
	if (b == NULL)
	{
		set_err(err, errlen, "out of memory reading \"%s\"", path);
		close(fd);
		return -1;
	}
	while (got < (size_t) st.st_size)
	{
		ssize_t		r = read(fd, b + got, (size_t) st.st_size - got);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
		{
			set_err(err, errlen, "could not read file \"%s\": %s", path, strerror(errno));
			free(b);
			close(fd);
			return -1;
		}
		if (r == 0)
			break;
		got += (size_t) r;
	}
	close(fd);
	*buf = b;
	*len = got;
	return 1;
}

static int
fsync_dir(const char *dir, char *err, size_t errlen)
{
	int			fd = open(dir, O_RDONLY);

	if (fd < 0)
	{
		set_err(err, errlen, "could not open directory \"%s\": %s", dir, strerror(errno));
		return -1;
	}
	if (fsync(fd) < 0)
	{
		set_err(err, errlen, "could not fsync directory \"%s\": %s", dir, strerror(errno));
		close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

/*
 * Replace dir/name with buf atomically and durably: write a temporary
 * file, fsync it, rename it over, fsync the directory.
 */
static int
write_atomic(const char *dir, const char *name, const uint8_t *buf, size_t len,
			 char *err, size_t errlen)
{
	char	   *path = path_join(dir, name);
	char	   *tmp;
	int			fd;
	int			rc = -1;

	if (path == NULL)
	{
		set_err(err, errlen, "out of memory");
		return -1;
	}
	tmp = malloc(strlen(path) + 5);
	if (tmp == NULL)
	{
		free(path);
		set_err(err, errlen, "out of memory");
		return -1;
	}
	sprintf(tmp, "%s.tmp", path);

	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0)
	{
		set_err(err, errlen, "could not create file \"%s\": %s", tmp, strerror(errno));
		goto out;
	}
	if (write_all(fd, buf, len) < 0)
	{
		set_err(err, errlen, "could not write file \"%s\": %s", tmp, strerror(errno));
		close(fd);
		goto out;
	}
	if (fsync(fd) < 0)
	{
		set_err(err, errlen, "could not fsync file \"%s\": %s", tmp, strerror(errno));
		close(fd);
		goto out;
	}
	if (close(fd) < 0)
	{
		set_err(err, errlen, "could not close file \"%s\": %s", tmp, strerror(errno));
		goto out;
	}
	if (rename(tmp, path) < 0)
	{
		set_err(err, errlen, "could not rename file \"%s\" to \"%s\": %s",
				tmp, path, strerror(errno));
		goto out;
	}
	if (fsync_dir(dir, err, errlen) < 0)
		goto out;
	rc = 0;
out:
	free(tmp);
	free(path);
	return rc;
}

/* create dir (one level) if missing, and make its entry durable */
static int
ensure_dir(const char *dir, char *err, size_t errlen)
{
	struct stat st;
	char	   *parent;
	char	   *slash;
	int			rc;

	if (stat(dir, &st) == 0)
	{
		if (!S_ISDIR(st.st_mode))
		{
			set_err(err, errlen, "\"%s\" is not a directory", dir);
			return -1;
		}
		return 0;
	}
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
	{
		set_err(err, errlen, "could not create directory \"%s\": %s", dir, strerror(errno));
		return -1;
	}
	if (fsync_dir(dir, err, errlen) < 0)
		return -1;
	parent = strdup(dir);
	if (parent == NULL)
	{
		set_err(err, errlen, "out of memory");
		return -1;
	}
	slash = strrchr(parent, '/');
	if (slash == parent)
		slash[1] = '\0';
	else if (slash != NULL)
		*slash = '\0';
	else
		strcpy(parent, ".");
	rc = fsync_dir(parent, err, errlen);
	free(parent);
	return rc;
}

/* ------------------------------------------------------------------
 * Identity
 * ------------------------------------------------------------------
 */

#define ID_SIZE (4 + 4 + 8 + 8 + 8 + 4 + DXS_NAME_LEN + 4)

int
dxs_identity_read(const char *dir, dxs_identity *id, char *err, size_t errlen)
{
	char	   *path = path_join(dir, ID_FILE);
	uint8_t    *buf;
	size_t		len;
	int			rc;

	if (path == NULL)
	{
		set_err(err, errlen, "out of memory");
		return -1;
	}
	rc = read_file(path, &buf, &len, err, errlen);
	if (rc <= 0)
	{
		free(path);
		return rc;
	}
	if (len != ID_SIZE || get_u32(buf) != ID_MAGIC ||
		get_u32(buf + ID_SIZE - 4) != raft_crc32c(0, buf, ID_SIZE - 4))
	{
		set_err(err, errlen, "file \"%s\" is corrupt", path);
		free(buf);
		free(path);
		return -1;
	}
	if (get_u32(buf + 4) != FILE_VERSION)
	{
		set_err(err, errlen, "file \"%s\" has unsupported version %u",
				path, get_u32(buf + 4));
		free(buf);
		free(path);
		return -1;
	}
	memset(id, 0, sizeof(*id));
	id->cluster_id = get_u64(buf + 8);
	id->node_id = get_u64(buf + 16);
	id->system_id = get_u64(buf + 24);
	id->founder = (get_u32(buf + 32) & 1) != 0;
	memcpy(id->name, buf + 36, DXS_NAME_LEN);
	id->name[DXS_NAME_LEN - 1] = '\0';
	free(buf);
	free(path);
	return 1;
}

int
dxs_identity_write(const char *dir, const dxs_identity *id, char *err, size_t errlen)
{
	uint8_t		buf[ID_SIZE];
	dxs_identity old;
	int			rc;

	if (ensure_dir(dir, err, errlen) < 0)
		return -1;
	rc = dxs_identity_read(dir, &old, err, errlen);
	if (rc < 0)
		return -1;
	if (rc > 0)
	{
		set_err(err, errlen, "directory \"%s\" already holds the identity of node %llu of cluster %llu",
				dir, (unsigned long long) old.node_id,
				(unsigned long long) old.cluster_id);
		return -1;
	}
	memset(buf, 0, sizeof(buf));
	put_u32(buf, ID_MAGIC);
	put_u32(buf + 4, FILE_VERSION);
	put_u64(buf + 8, id->cluster_id);
	put_u64(buf + 16, id->node_id);
	put_u64(buf + 24, id->system_id);
	put_u32(buf + 32, id->founder ? 1 : 0);
	memcpy(buf + 36, id->name, strnlen(id->name, DXS_NAME_LEN - 1));
	put_u32(buf + ID_SIZE - 4, raft_crc32c(0, buf, ID_SIZE - 4));
	return write_atomic(dir, ID_FILE, buf, sizeof(buf), err, errlen);
}

/* ------------------------------------------------------------------
 * Opening
 * ------------------------------------------------------------------
 */

const char *
dxs_error(const dxs_storage *s)
{
	return s->err;
}

static void
free_entries_from(dxs_storage *s, size_t k)
{
	size_t		i;

	for (i = k; i < s->n; i++)
		free(s->ents[i].data);
	if (k < s->n)
		s->n = k;
}

void
dxs_close(dxs_storage *s)
{
	if (s == NULL)
		return;
	free_entries_from(s, 0);
	free(s->ents);
	free(s->offs);
	free(s->snap.data);
	if (s->log_fd >= 0)
		close(s->log_fd);
	free(s->dir);
	free(s);
}

static int
reserve(dxs_storage *s, size_t need)
{
	size_t		cap = s->cap ? s->cap : 64;
	raft_entry *e;
	uint64_t   *o;

	if (need <= s->cap)
		return 0;
	while (cap < need)
		cap *= 2;
	e = realloc(s->ents, cap * sizeof(raft_entry));
	if (e == NULL)
		return -1;
	s->ents = e;
	o = realloc(s->offs, cap * sizeof(uint64_t));
	if (o == NULL)
		return -1;
	s->offs = o;
	s->cap = cap;
	return 0;
}

static int
load_hard_state(dxs_storage *s)
{
	char	   *path = path_join(s->dir, HS_FILE);
	uint8_t    *buf;
	size_t		len;
	int			rc;

	if (path == NULL)
	{
		set_err(s->err, sizeof(s->err), "out of memory");
		return -1;
	}
	memset(&s->hs, 0, sizeof(s->hs));
	rc = read_file(path, &buf, &len, s->err, sizeof(s->err));
	if (rc <= 0)
	{
		free(path);
		return rc;
	}
	if (len != 36 || get_u32(buf) != HS_MAGIC || get_u32(buf + 4) != FILE_VERSION ||
		get_u32(buf + 32) != raft_crc32c(0, buf, 32))
	{
		set_err(s->err, sizeof(s->err), "file \"%s\" is corrupt", path);
		free(buf);
		free(path);
		return -1;
	}
	s->hs.term = get_u64(buf + 8);
	s->hs.vote = get_u64(buf + 16);
	s->hs.commit = get_u64(buf + 24);
	free(buf);
	free(path);
	return 0;
}

#define SN_HDR (4 + 4 + 8 + 8 + 4 + 8 * RAFT_MAX_VOTERS + 4)

static int
load_snapshot(dxs_storage *s)
{
	char	   *path = path_join(s->dir, SN_FILE);
	uint8_t    *buf;
	size_t		len;
	uint32_t	dlen;
	uint32_t	i;
	int			rc;

	if (path == NULL)
	{
		set_err(s->err, sizeof(s->err), "out of memory");
		return -1;
	}
	rc = read_file(path, &buf, &len, s->err, sizeof(s->err));
	if (rc <= 0)
	{
		free(path);
		return rc;
	}
	if (len < SN_HDR + 4 || get_u32(buf) != SN_MAGIC ||
		get_u32(buf + 4) != FILE_VERSION ||
		(dlen = get_u32(buf + SN_HDR - 4)) != len - SN_HDR - 4 ||
		get_u32(buf + len - 4) != raft_crc32c(0, buf, len - 4) ||
		get_u32(buf + 24) > RAFT_MAX_VOTERS)
	{
		set_err(s->err, sizeof(s->err), "file \"%s\" is corrupt", path);
		free(buf);
		free(path);
		return -1;
	}
	memset(&s->snap, 0, sizeof(s->snap));
	s->snap.index = get_u64(buf + 8);
	s->snap.term = get_u64(buf + 16);
	s->snap.config.n = get_u32(buf + 24);
	for (i = 0; i < s->snap.config.n; i++)
		s->snap.config.voters[i] = get_u64(buf + 28 + 8 * i);
	s->snap.len = dlen;
	s->snap.data = malloc(dlen ? dlen : 1);
	if (s->snap.data == NULL)
	{
		set_err(s->err, sizeof(s->err), "out of memory");
		free(buf);
		free(path);
		return -1;
	}
	memcpy(s->snap.data, buf + SN_HDR, dlen);
	s->has_snap = true;
	free(buf);
	free(path);
	return 0;
}

/*
 * Rewrite the log file with the entries in memory (compaction, or after
 * open found entries to drop), atomically.
 */
static int
log_rewrite(dxs_storage *s)
{
	char	   *path = path_join(s->dir, LOG_FILE);
	char	   *tmp = path ? malloc(strlen(path) + 5) : NULL;
	uint64_t	off = LOG_MAGIC_LEN;
	uint8_t		hdr[REC_HDR];
	int			fd = -1;
	size_t		i;

	if (path == NULL || tmp == NULL)
	{
		free(path);
		set_err(s->err, sizeof(s->err), "out of memory");
		return -1;
	}
	sprintf(tmp, "%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0)
	{
		set_err(s->err, sizeof(s->err), "could not create file \"%s\": %s", tmp, strerror(errno));
		goto fail;
	}
	if (write_all(fd, (const uint8_t *) LOG_MAGIC, LOG_MAGIC_LEN) < 0)
		goto write_fail;
	for (i = 0; i < s->n; i++)
	{
		const raft_entry *e = &s->ents[i];
		uint32_t	crc;

		memset(hdr, 0, sizeof(hdr));
		put_u32(hdr, e->len);
		put_u64(hdr + 8, e->term);
		put_u64(hdr + 16, e->index);
		hdr[24] = e->type;
		crc = raft_crc32c(0, hdr, REC_HDR);
		crc = raft_crc32c(crc, e->data, e->len);
		put_u32(hdr + 4, crc);
		if (write_all(fd, hdr, REC_HDR) < 0 ||
			(e->len > 0 && write_all(fd, e->data, e->len) < 0))
			goto write_fail;
		s->offs[i] = off;
		off += REC_HDR + e->len;
	}
	if (fsync(fd) < 0)
	{
		set_err(s->err, sizeof(s->err), "could not fsync file \"%s\": %s", tmp, strerror(errno));
		goto fail;
	}
	if (rename(tmp, path) < 0)
	{
		set_err(s->err, sizeof(s->err), "could not rename file \"%s\": %s", tmp, strerror(errno));
		goto fail;
	}
	if (fsync_dir(s->dir, s->err, sizeof(s->err)) < 0)
		goto fail;
	/* the descriptor now names the new file */
	if (s->log_fd >= 0)
		close(s->log_fd);
	s->log_fd = fd;
	s->log_size = off;
	s->dirty = false;
	free(tmp);
	free(path);
	return 0;

write_fail:
	set_err(s->err, sizeof(s->err), "could not write file \"%s\": %s", tmp, strerror(errno));
fail:
	if (fd >= 0)
		close(fd);
	free(tmp);
	free(path);
	s->broken = true;
	return -1;
}

/*
 * Keep only the entries that follow the snapshot in the same history: if
 * the log holds the snapshot's last entry with the same term, the entries
 * after it; otherwise none.  Returns whether anything was dropped.
 */
static bool
trim_to_snapshot(dxs_storage *s)
{
	size_t		k;
	size_t		i;

	if (!s->has_snap || s->n == 0)
		return false;
	if (s->ents[0].index > s->snap.index + 1 ||
		s->ents[s->n - 1].index < s->snap.index)
	{
		free_entries_from(s, 0);
		return true;
	}
	if (s->ents[0].index == s->snap.index + 1)
		return false;
	k = (size_t) (s->snap.index - s->ents[0].index);
	if (s->ents[k].term != s->snap.term)
	{
		free_entries_from(s, 0);
		return true;
	}
	/* drop 0..k */
	for (i = 0; i <= k; i++)
		free(s->ents[i].data);
	memmove(s->ents, s->ents + k + 1, (s->n - k - 1) * sizeof(raft_entry));
	memmove(s->offs, s->offs + k + 1, (s->n - k - 1) * sizeof(uint64_t));
	s->n -= k + 1;
	return true;
}

static int
load_log(dxs_storage *s)
{
	char	   *path = path_join(s->dir, LOG_FILE);
	uint8_t    *buf;
	size_t		len;
	size_t		off;
	int			rc;
	bool		rewrite = false;

	if (path == NULL)
	{
		set_err(s->err, sizeof(s->err), "out of memory");
		return -1;
	}
	rc = read_file(path, &buf, &len, s->err, sizeof(s->err));
	if (rc < 0)
	{
		free(path);
		return -1;
	}
	if (rc == 0 || len < LOG_MAGIC_LEN)
	{
		/* no log yet, or a crash while it was being created */
		free(buf);
		free(path);
		return log_rewrite(s);
	}
	if (memcmp(buf, LOG_MAGIC, LOG_MAGIC_LEN) != 0)
	{
		set_err(s->err, sizeof(s->err), "file \"%s\" is not a distx Raft log", path);
		free(buf);
		free(path);
		return -1;
	}
	off = LOG_MAGIC_LEN;
	while (off < len)
	{
		uint8_t		hdr[REC_HDR];
		uint32_t	dlen;
		uint32_t	crc;
		raft_entry *e;

		if (len - off < REC_HDR)
			break;				/* torn header */
		memcpy(hdr, buf + off, REC_HDR);
		dlen = get_u32(hdr);
		if ((uint64_t) len - off - REC_HDR < dlen)
			break;				/* torn data */
		crc = get_u32(hdr + 4);
		put_u32(hdr + 4, 0);
		if (raft_crc32c(raft_crc32c(0, hdr, REC_HDR), buf + off + REC_HDR, dlen) != crc)
			break;				/* torn or corrupt: the end of the log */
		/*
		 * A term lower than the previous entry's can only be the remains
		 * of a tail that was being replaced when the server crashed (never
		 * acknowledged): the end of the log.
		 */
		if (s->n > 0 && get_u64(hdr + 8) < s->ents[s->n - 1].term)
			break;
		if (s->n > 0 && get_u64(hdr + 16) != s->ents[s->n - 1].index + 1)
		{
			set_err(s->err, sizeof(s->err),
					"file \"%s\" is corrupt: entry %llu follows entry %llu",
					path, (unsigned long long) get_u64(hdr + 16),
					(unsigned long long) s->ents[s->n - 1].index);
			free(buf);
			free(path);
			return -1;
		}
		if (reserve(s, s->n + 1) < 0)
		{
			set_err(s->err, sizeof(s->err), "out of memory");
			free(buf);
			free(path);
			return -1;
		}
		e = &s->ents[s->n];
		e->len = dlen;
		e->term = get_u64(hdr + 8);
		e->index = get_u64(hdr + 16);
		e->type = hdr[24];
		e->data = malloc(dlen ? dlen : 1);
		if (e->data == NULL)
		{
			set_err(s->err, sizeof(s->err), "out of memory");
			free(buf);
			free(path);
			return -1;
		}
		memcpy(e->data, buf + off + REC_HDR, dlen);
		s->offs[s->n] = off;
		s->n++;
		off += REC_HDR + dlen;
	}
	if (off < len)
		rewrite = true;			/* cut the torn tail */
	free(buf);
	if (trim_to_snapshot(s))
		rewrite = true;
	if (rewrite)
	{
		free(path);
		return log_rewrite(s);
	}
	s->log_fd = open(path, O_WRONLY);
	free(path);
	return 0;
}

dxs_storage *
dxs_open(const char *dir, char *err, size_t errlen)
{
	dxs_storage *s;
	char	   *path;

	if (ensure_dir(dir, err, errlen) < 0)
		return NULL;
	s = calloc(1, sizeof(dxs_storage));
	if (s == NULL || (s->dir = strdup(dir)) == NULL)
	{
		free(s);
		set_err(err, errlen, "out of memory");
		return NULL;
	}
	s->log_fd = -1;
	if (load_hard_state(s) < 0 || load_snapshot(s) < 0 || load_log(s) < 0)
	{
		set_err(err, errlen, "%s", s->err);
		dxs_close(s);
		return NULL;
	}
	if (s->log_fd < 0)
	{
		path = path_join(dir, LOG_FILE);
		set_err(err, errlen, "could not open file \"%s\": %s",
				path ? path : LOG_FILE, strerror(errno));
		free(path);
		dxs_close(s);
		return NULL;
	}
	{
		struct stat st;

		if (fstat(s->log_fd, &st) < 0)
		{
			set_err(err, errlen, "could not stat the Raft log: %s", strerror(errno));
			dxs_close(s);
			return NULL;
		}
		s->log_size = (uint64_t) st.st_size;
	}
	return s;
}

/* ------------------------------------------------------------------
 * Reading
 * ------------------------------------------------------------------
 */

void
dxs_hard_state(const dxs_storage *s, raft_hard_state *hs)
{
	*hs = s->hs;
}

const raft_snapshot *
dxs_snapshot(const dxs_storage *s)
{
	return s->has_snap ? &s->snap : NULL;
}

int
dxs_entries(dxs_storage *s, const raft_entry **entries, size_t *n)
{
	*entries = s->ents;
	*n = s->n;
	return 0;
}

raft_index
dxs_first_index(const dxs_storage *s)
{
	return s->n > 0 ? s->ents[0].index : 0;
}

raft_index
dxs_last_index(const dxs_storage *s)
{
	return s->n > 0 ? s->ents[s->n - 1].index : 0;
}

uint64_t
dxs_log_bytes(const dxs_storage *s)
{
	return s->log_size;
}

/* ------------------------------------------------------------------
 * Writing
 * ------------------------------------------------------------------
 */

static int
check_usable(dxs_storage *s)
{
	if (s->broken)
	{
		/* keep the first error: it is the one that matters */
		return -1;
	}
	return 0;
}

int
dxs_append(dxs_storage *s, const raft_entry *entries, size_t n)
{
	raft_index	first;
	raft_index	expect;
	uint8_t    *buf;
	size_t		total = 0;
	size_t		i;
	size_t		k;
	uint64_t	off;

	if (check_usable(s) < 0)
		return -1;
	if (n == 0)
		return 0;
	first = entries[0].index;
	for (i = 1; i < n; i++)
		if (entries[i].index != entries[i - 1].index + 1)
		{
			set_err(s->err, sizeof(s->err), "entries to append are not consecutive (%llu after %llu)",
					(unsigned long long) entries[i].index,
					(unsigned long long) entries[i - 1].index);
			return -1;
		}

	/* cut the conflicting tail */
	if (s->n > 0 && first <= s->ents[s->n - 1].index)
	{
		if (first < s->ents[0].index)
		{
			set_err(s->err, sizeof(s->err), "cannot append entry %llu before the first stored entry %llu",
					(unsigned long long) first, (unsigned long long) s->ents[0].index);
			return -1;
		}
		k = (size_t) (first - s->ents[0].index);

		/*
		 * The cut is made durable before the new entries are written, so
		 * that a crash can never leave new entries followed by old ones.
		 */
		if (ftruncate(s->log_fd, (off_t) s->offs[k]) < 0 || fsync(s->log_fd) < 0)
		{
			set_err(s->err, sizeof(s->err), "could not truncate the Raft log: %s", strerror(errno));
			s->broken = true;
			return -1;
		}
		s->log_size = s->offs[k];
		free_entries_from(s, k);
	}
	expect = s->n > 0 ? s->ents[s->n - 1].index + 1 :
		(s->has_snap ? s->snap.index + 1 : 1);
	if (first != expect)
	{
		set_err(s->err, sizeof(s->err), "cannot append entry %llu: the next entry is %llu",
				(unsigned long long) first, (unsigned long long) expect);
		return -1;
	}

	for (i = 0; i < n; i++)
		total += REC_HDR + entries[i].len;
	buf = malloc(total ? total : 1);
	if (buf == NULL || reserve(s, s->n + n) < 0)
	{
		free(buf);
		set_err(s->err, sizeof(s->err), "out of memory");
		return -1;
	}
	off = 0;
	for (i = 0; i < n; i++)
	{
		const raft_entry *e = &entries[i];
		uint8_t    *hdr = buf + off;
		uint32_t	crc;

		memset(hdr, 0, REC_HDR);
		put_u32(hdr, e->len);
		put_u64(hdr + 8, e->term);
		put_u64(hdr + 16, e->index);
		hdr[24] = e->type;
		if (e->len > 0)
			memcpy(hdr + REC_HDR, e->data, e->len);
		crc = raft_crc32c(0, hdr, REC_HDR);
		crc = raft_crc32c(crc, hdr + REC_HDR, e->len);
		put_u32(hdr + 4, crc);
		off += REC_HDR + e->len;
	}
	if (lseek(s->log_fd, (off_t) s->log_size, SEEK_SET) < 0 ||
		write_all(s->log_fd, buf, total) < 0)
	{
		set_err(s->err, sizeof(s->err), "could not write to the Raft log: %s", strerror(errno));
		free(buf);
		s->broken = true;
		return -1;
	}
	free(buf);

	off = s->log_size;
	for (i = 0; i < n; i++)
	{
		raft_entry *e = &s->ents[s->n];

		*e = entries[i];
		e->data = malloc(entries[i].len ? entries[i].len : 1);
		if (e->data == NULL)
		{
			set_err(s->err, sizeof(s->err), "out of memory");
			s->broken = true;	/* memory and file differ now */
			return -1;
		}
		if (entries[i].len > 0)
			memcpy(e->data, entries[i].data, entries[i].len);
		s->offs[s->n] = off;
		off += REC_HDR + entries[i].len;
		s->n++;
	}
	s->log_size = off;
	s->dirty = true;
	return 0;
}

int
dxs_sync(dxs_storage *s)
{
	if (check_usable(s) < 0)
		return -1;
	if (!s->dirty)
		return 0;
	if (fsync(s->log_fd) < 0)
	{
		set_err(s->err, sizeof(s->err), "could not fsync the Raft log: %s", strerror(errno));
		s->broken = true;
		return -1;
	}
	s->dirty = false;
	return 0;
}

int
dxs_set_hard_state(dxs_storage *s, const raft_hard_state *hs)
{
	uint8_t		buf[36];

	if (check_usable(s) < 0)
		return -1;
	put_u32(buf, HS_MAGIC);
	put_u32(buf + 4, FILE_VERSION);
	put_u64(buf + 8, hs->term);
	put_u64(buf + 16, hs->vote);
	put_u64(buf + 24, hs->commit);
	put_u32(buf + 32, raft_crc32c(0, buf, 32));
	if (write_atomic(s->dir, HS_FILE, buf, sizeof(buf), s->err, sizeof(s->err)) < 0)
	{
		s->broken = true;
		return -1;
	}
	s->hs = *hs;
	return 0;
}

int
dxs_save_snapshot(dxs_storage *s, const raft_snapshot *snap)
{
	size_t		len;
	uint8_t    *buf;
	uint8_t    *data;
	uint32_t	i;

	if (check_usable(s) < 0)
		return -1;
	if (snap->config.n > RAFT_MAX_VOTERS)
	{
		set_err(s->err, sizeof(s->err), "snapshot configuration has %u voters", snap->config.n);
		return -1;
	}
	len = SN_HDR + snap->len + 4;
	buf = calloc(1, len);
	data = malloc(snap->len ? snap->len : 1);
	if (buf == NULL || data == NULL)
	{
		free(buf);
		free(data);
		set_err(s->err, sizeof(s->err), "out of memory");
		return -1;
	}
	put_u32(buf, SN_MAGIC);
	put_u32(buf + 4, FILE_VERSION);
	put_u64(buf + 8, snap->index);
	put_u64(buf + 16, snap->term);
	put_u32(buf + 24, snap->config.n);
	for (i = 0; i < snap->config.n; i++)
		put_u64(buf + 28 + 8 * i, snap->config.voters[i]);
	put_u32(buf + SN_HDR - 4, snap->len);
	if (snap->len > 0)
	{
		memcpy(buf + SN_HDR, snap->data, snap->len);
		memcpy(data, snap->data, snap->len);
	}
	put_u32(buf + len - 4, raft_crc32c(0, buf, len - 4));
	if (write_atomic(s->dir, SN_FILE, buf, len, s->err, sizeof(s->err)) < 0)
	{
		free(buf);
		free(data);
		s->broken = true;
		return -1;
	}
	free(buf);
	free(s->snap.data);
	s->snap = *snap;
	s->snap.data = data;
	s->has_snap = true;

	/* the log now starts after the snapshot */
	if (trim_to_snapshot(s))
		return log_rewrite(s);
	return 0;
}
