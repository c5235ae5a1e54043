/*-------------------------------------------------------------------------
 *
 * raft_codec.c
 *	  Encoding and bounds-checked decoding of Raft messages and
 *	  configuration payloads.  See raft_codec.h for the wire format.
 *
 * The decoder is the one place where bytes from the network enter the
 * core, so it is written defensively: every read goes through a cursor
 * that checks the remaining length first, counts are checked against the
 * bytes actually present before anything is allocated (a garbage count
 * can not make us allocate gigabytes), and the semantic checks that the
 * state machine relies on (consecutive indexes, sane terms, well-formed
 * configurations) are done here, once.
 *
 *-------------------------------------------------------------------------
 */
#include <stdio.h>
#include <string.h>

#include "raft_alloc.h"
#include "raft_codec.h"

/* ---------------------------------------------------------------------
 * CRC-32C, table driven.  The table is built on first use; building it
 * twice (two threads racing) is harmless since both write equal values.
 * ---------------------------------------------------------------------
 */
static uint32_t crc_table[256];
static bool crc_table_ready = false;

static void
crc_init(void)
{
	uint32_t	i;

	for (i = 0; i < 256; i++)
	{
		uint32_t	c = i;
		int			k;

		for (k = 0; k < 8; k++)
			c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : (c >> 1);
		crc_table[i] = c;
	}
	crc_table_ready = true;
}

uint32_t
raft_crc32c(uint32_t crc, const uint8_t *buf, size_t len)
{
	size_t		i;

	if (!crc_table_ready)
		crc_init();
	crc = ~crc;
	for (i = 0; i < len; i++)
		crc = crc_table[(crc ^ buf[i]) & 0xFF] ^ (crc >> 8);
	return ~crc;
}

/* ---------------------------------------------------------------------
 * Little-endian primitives
 * ---------------------------------------------------------------------
 */
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

/* A read cursor that refuses to run past the end. */
typedef struct cursor
{
	const uint8_t *p;
	size_t		left;
	bool		bad;
} cursor;

static bool
cur_need(cursor *c, size_t n)
{
	if (c->bad || c->left < n)
	{
		c->bad = true;
		return false;
	}
	return true;
}

static uint8_t
cur_u8(cursor *c)
{
	uint8_t		v;

	if (!cur_need(c, 1))
		return 0;
	v = c->p[0];
	c->p += 1;
	c->left -= 1;
	return v;
}

static uint32_t
cur_u32(cursor *c)
{
	uint32_t	v;

	if (!cur_need(c, 4))
		return 0;
	v = get_u32(c->p);
	c->p += 4;
	c->left -= 4;
	return v;
}

static uint64_t
cur_u64(cursor *c)
{
	uint64_t	v;

	if (!cur_need(c, 8))
		return 0;
	v = get_u64(c->p);
	c->p += 8;
	c->left -= 8;
	return v;
}

static const uint8_t *
cur_bytes(cursor *c, size_t n)
{
	const uint8_t *v;

	if (!cur_need(c, n))
		return NULL;
	v = c->p;
	c->p += n;
	c->left -= n;
	return v;
}

/* ---------------------------------------------------------------------
 * Configuration payload: version u8 (1), n u32, voters u64 x n
 * ---------------------------------------------------------------------
 */
bool
raft_config_has(const raft_config *c, raft_id id)
{
	uint32_t	i;

	for (i = 0; i < c->n; i++)
		if (c->voters[i] == id)
			return true;
	return false;
}

uint32_t
raft_config_encoded_size(const raft_config *c)
{
	return 1 + 4 + 8 * c->n;
}

void
raft_config_encode(const raft_config *c, uint8_t *buf)
{
	uint32_t	i;

	buf[0] = 1;
	put_u32(buf + 1, c->n);
	for (i = 0; i < c->n; i++)
		put_u64(buf + 5 + 8 * i, c->voters[i]);
}

/* A valid configuration: 1..RAFT_MAX_VOTERS distinct nonzero ids. */
static bool
config_valid(const raft_config *c)
{
	uint32_t	i,
				j;

	if (c->n < 1 || c->n > RAFT_MAX_VOTERS)
		return false;
	for (i = 0; i < c->n; i++)
	{
		if (c->voters[i] == RAFT_NONE)
			return false;
		for (j = 0; j < i; j++)
			if (c->voters[j] == c->voters[i])
				return false;
	}
	return true;
}

static bool
cur_config(cursor *c, raft_config *conf)
{
	uint32_t	n,
				i;

	n = cur_u32(c);
	if (c->bad || n < 1 || n > RAFT_MAX_VOTERS)
	{
		c->bad = true;
		return false;
	}
	memset(conf, 0, sizeof(*conf));
	conf->n = n;
	for (i = 0; i < n; i++)
		conf->voters[i] = cur_u64(c);
	if (c->bad || !config_valid(conf))
	{
		c->bad = true;
		return false;
	}
	return true;
}

int
raft_config_decode(const uint8_t *buf, size_t len, raft_config *conf)
{
	cursor		c;

	c.p = buf;
	c.left = len;
	c.bad = false;
	if (cur_u8(&c) != 1)
		return RAFT_EDECODE;
	if (!cur_config(&c, conf) || c.left != 0)
		return RAFT_EDECODE;
	return RAFT_OK;
}

/* ---------------------------------------------------------------------
 * Messages
 * ---------------------------------------------------------------------
 */
static const char *const msg_names[] = {
	"?", "APPEND", "APPEND_RESP", "VOTE", "VOTE_RESP", "PREVOTE",
	"PREVOTE_RESP", "HEARTBEAT", "HEARTBEAT_RESP", "SNAPSHOT", "TIMEOUT_NOW"
};

const char *
raft_msg_type_name(int type)
{
	if (type < 1 || type > RAFT_MSG_TYPE_MAX)
		return "?";
	return msg_names[type];
}

size_t
raft_msg_encoded_size(const raft_message *m)
{
	size_t		size = RAFT_WIRE_HEADER + 4;
	uint32_t	i;

	if (m->n_entries > RAFT_WIRE_MAX_ENTRIES)
		return 0;
	for (i = 0; i < m->n_entries; i++)
	{
		if (m->entries[i].len > RAFT_WIRE_MAX_DATA)
			return 0;
		size += RAFT_WIRE_ENTRY_HEADER + (size_t) m->entries[i].len;
	}
	if (m->type == RAFT_MSG_SNAPSHOT)
	{
		if (m->snapshot.config.n > RAFT_MAX_VOTERS ||
			m->snapshot.len > RAFT_WIRE_MAX_SNAPSHOT)
			return 0;
		size += 8 + 8 + 4 + 8 * (size_t) m->snapshot.config.n + 4 +
			(size_t) m->snapshot.len;
	}
	return size;
}

size_t
raft_msg_encode(const raft_message *m, uint8_t *buf, size_t cap)
{
	size_t		size = raft_msg_encoded_size(m);
	uint8_t    *p = buf;
	uint32_t	i;

	if (size == 0 || cap < size)
		return 0;
	p[0] = RAFT_WIRE_MAGIC0;
	p[1] = RAFT_WIRE_MAGIC1;
	p[2] = RAFT_WIRE_VERSION;
	p[3] = m->type;
	p[4] = m->flags;
	p[5] = p[6] = p[7] = 0;
	put_u64(p + 8, m->from);
	put_u64(p + 16, m->to);
	put_u64(p + 24, m->term);
	put_u64(p + 32, m->log_term);
	put_u64(p + 40, m->index);
	put_u64(p + 48, m->commit);
	put_u64(p + 56, m->hint);
	put_u32(p + 64, m->n_entries);
	p += RAFT_WIRE_HEADER;
	for (i = 0; i < m->n_entries; i++)
	{
		const raft_entry *e = &m->entries[i];

		put_u64(p, e->term);
		put_u64(p + 8, e->index);
		p[16] = e->type;
		put_u32(p + 17, e->len);
		p += RAFT_WIRE_ENTRY_HEADER;
		if (e->len > 0)
			memcpy(p, e->data, e->len);
		p += e->len;
	}
	if (m->type == RAFT_MSG_SNAPSHOT)
	{
		const raft_snapshot *s = &m->snapshot;

		put_u64(p, s->index);
		put_u64(p + 8, s->term);
		put_u32(p + 16, s->config.n);
		p += 20;
		for (i = 0; i < s->config.n; i++)
		{
			put_u64(p, s->config.voters[i]);
			p += 8;
		}
		put_u32(p, s->len);
		p += 4;
		if (s->len > 0)
			memcpy(p, s->data, s->len);
		p += s->len;
	}
	put_u32(p, raft_crc32c(0, buf, (size_t) (p - buf)));
	p += 4;
	return (size_t) (p - buf);
}

void
raft_msg_free_decoded(raft_message *m, const raft_allocator *alloc)
{
	raft_mem_free(alloc, m->entries);
	m->entries = NULL;
	m->n_entries = 0;
}

int
raft_msg_decode(const uint8_t *buf, size_t len, raft_message *m,
				const raft_allocator *alloc)
{
	cursor		c;
	uint32_t	i;
	raft_term	prev_term;

	memset(m, 0, sizeof(*m));
	if (buf == NULL || len < RAFT_WIRE_HEADER + 4)
		return RAFT_EDECODE;

	/* Checksum first: cheap rejection of garbage and torn messages. */
	if (get_u32(buf + len - 4) != raft_crc32c(0, buf, len - 4))
		return RAFT_EDECODE;

	c.p = buf;
	c.left = len - 4;
	c.bad = false;

	if (cur_u8(&c) != RAFT_WIRE_MAGIC0 || cur_u8(&c) != RAFT_WIRE_MAGIC1)
		return RAFT_EDECODE;
	if (cur_u8(&c) != RAFT_WIRE_VERSION)
		return RAFT_EDECODE;
	m->type = cur_u8(&c);
	m->flags = cur_u8(&c);
	if (cur_u8(&c) != 0 || cur_u8(&c) != 0 || cur_u8(&c) != 0)
		return RAFT_EDECODE;
	if (m->type < 1 || m->type > RAFT_MSG_TYPE_MAX ||
		(m->flags & ~RAFT_MSGF_ALL) != 0)
		return RAFT_EDECODE;
	m->from = cur_u64(&c);
	m->to = cur_u64(&c);
	m->term = cur_u64(&c);
	m->log_term = cur_u64(&c);
	m->index = cur_u64(&c);
	m->commit = cur_u64(&c);
	m->hint = cur_u64(&c);
	m->n_entries = cur_u32(&c);
	if (c.bad || m->from == RAFT_NONE || m->to == RAFT_NONE)
		return RAFT_EDECODE;
	if (m->n_entries > 0 && m->type != RAFT_MSG_APPEND)
		return RAFT_EDECODE;
	/* Every entry needs at least its header: check before allocating. */
	if (m->n_entries > RAFT_WIRE_MAX_ENTRIES ||
		(size_t) m->n_entries > c.left / RAFT_WIRE_ENTRY_HEADER)
		return RAFT_EDECODE;
	/* An append's entries follow index, and index + n must not wrap. */
	if (m->n_entries > 0 && m->index > UINT64_MAX - m->n_entries)
		return RAFT_EDECODE;

	if (m->n_entries > 0)
	{
		m->entries = raft_mem_alloc(alloc,
									sizeof(raft_entry) * m->n_entries);
		if (m->entries == NULL)
		{
			m->n_entries = 0;
			return RAFT_ENOMEM;
		}
	}
	prev_term = m->log_term;
	for (i = 0; i < m->n_entries; i++)
	{
		raft_entry *e = &m->entries[i];

		e->term = cur_u64(&c);
		e->index = cur_u64(&c);
		e->type = cur_u8(&c);
		e->len = cur_u32(&c);
		if (c.bad || e->len > RAFT_WIRE_MAX_DATA)
			goto bad;
		e->data = (uint8_t *) cur_bytes(&c, e->len);
		if (c.bad)
			goto bad;
		if (e->index != m->index + 1 + i)
			goto bad;
		/* Terms in a log never decrease and never exceed the sender's. */
		if (e->term < prev_term || e->term > m->term || e->term == 0)
			goto bad;
		prev_term = e->term;
		if (e->type < RAFT_ENTRY_NORMAL || e->type > RAFT_ENTRY_CONFIG)
			goto bad;
		if (e->type == RAFT_ENTRY_CONFIG)
		{
			raft_config conf;

			if (raft_config_decode(e->data, e->len, &conf) != RAFT_OK)
				goto bad;
		}
		if (e->type == RAFT_ENTRY_NOOP && e->len != 0)
			goto bad;
	}
	if (m->type == RAFT_MSG_SNAPSHOT)
	{
		raft_snapshot *s = &m->snapshot;

		s->index = cur_u64(&c);
		s->term = cur_u64(&c);
		if (!cur_config(&c, &s->config))
			goto bad;
		s->len = cur_u32(&c);
		if (c.bad || s->len > RAFT_WIRE_MAX_SNAPSHOT)
			goto bad;
		s->data = (uint8_t *) cur_bytes(&c, s->len);
		if (c.bad || s->term > m->term || (s->index > 0 && s->term == 0))
			goto bad;
	}
	/* Nothing may be left over. */
	if (c.bad || c.left != 0)
		goto bad;
	/* No log holds an entry from a term later than its owner's term. */
	if (m->log_term > m->term)
		goto bad;
	return RAFT_OK;

bad:
	raft_msg_free_decoded(m, alloc);
	return RAFT_EDECODE;
}

void
raft_msg_describe(const raft_message *m, char *out, size_t cap)
{
	int			n;

	n = snprintf(out, cap, "%s %llu->%llu t%llu",
				 raft_msg_type_name(m->type),
				 (unsigned long long) m->from, (unsigned long long) m->to,
				 (unsigned long long) m->term);
	if (n < 0 || (size_t) n >= cap)
		return;
	switch (m->type)
	{
		case RAFT_MSG_APPEND:
			snprintf(out + n, cap - (size_t) n,
					 " prev=%llu/t%llu n=%u commit=%llu",
					 (unsigned long long) m->index,
					 (unsigned long long) m->log_term, m->n_entries,
					 (unsigned long long) m->commit);
			break;
		case RAFT_MSG_APPEND_RESP:
			snprintf(out + n, cap - (size_t) n, " %s index=%llu hint=%llu/t%llu",
					 (m->flags & RAFT_MSGF_REJECT) ? "reject" : "ok",
					 (unsigned long long) m->index,
					 (unsigned long long) m->hint,
					 (unsigned long long) m->log_term);
			break;
		case RAFT_MSG_VOTE:
		case RAFT_MSG_PREVOTE:
			snprintf(out + n, cap - (size_t) n, " last=%llu/t%llu%s",
					 (unsigned long long) m->index,
					 (unsigned long long) m->log_term,
					 (m->flags & RAFT_MSGF_TRANSFER) ? " transfer" : "");
			break;
		case RAFT_MSG_VOTE_RESP:
		case RAFT_MSG_PREVOTE_RESP:
			snprintf(out + n, cap - (size_t) n, " %s",
					 (m->flags & RAFT_MSGF_REJECT) ? "reject" : "grant");
			break;
		case RAFT_MSG_HEARTBEAT:
			snprintf(out + n, cap - (size_t) n, " commit=%llu",
					 (unsigned long long) m->commit);
			break;
		case RAFT_MSG_SNAPSHOT:
			snprintf(out + n, cap - (size_t) n, " snap=%llu/t%llu voters=%u len=%u",
					 (unsigned long long) m->snapshot.index,
					 (unsigned long long) m->snapshot.term,
					 m->snapshot.config.n, m->snapshot.len);
			break;
		default:
			break;
	}
}
