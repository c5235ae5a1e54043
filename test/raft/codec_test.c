/*-------------------------------------------------------------------------
 *
 * codec_test.c
 *	  Unit tests of the Raft wire codec: round trips, and rejection of
 *	  truncated, oversized, corrupted and random input (never a crash,
 *	  never a read outside the buffer; run under -fsanitize to be sure).
 *
 * Prints one TAP-style line per test ("ok - ..." / "not ok - ..."); the
 * numbering is added by run_check.sh.
 *
 *-------------------------------------------------------------------------
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "raft.h"
#include "raft_codec.h"

static int	failures = 0;

static uint64_t rng_state = 88172645463325252ULL;

static uint64_t
rnd(void)
{
	/* xorshift64*: deterministic, good enough for test data */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 2685821657736338717ULL;
}

static void
report(bool ok, const char *desc, const char *detail)
{
	if (ok)
		printf("ok - codec: %s\n", desc);
	else
	{
		printf("not ok - codec: %s\n", desc);
		printf("# %s\n", detail ? detail : "");
		failures++;
	}
}

static uint8_t data_pool[4096];

/* A random but valid message of the given type. */
static void
random_message(raft_message *m, raft_entry *ents, int type)
{
	uint32_t	i;

	memset(m, 0, sizeof(*m));
	m->type = (uint8_t) type;
	m->from = 1 + rnd() % 100;
	m->to = 1 + rnd() % 100;
	m->term = 1 + rnd() % 1000;
	m->index = rnd() % 100000;
	m->log_term = rnd() % (m->term + 1);
	m->commit = rnd() % 100000;
	m->hint = rnd() % 100000;
	if (type == RAFT_MSG_VOTE_RESP || type == RAFT_MSG_APPEND_RESP)
		m->flags = (rnd() % 2) ? RAFT_MSGF_REJECT : 0;
	if (type == RAFT_MSG_VOTE)
		m->flags = (rnd() % 2) ? RAFT_MSGF_TRANSFER : 0;
	if (type == RAFT_MSG_APPEND)
	{
		raft_term	t = m->log_term;

		m->n_entries = (uint32_t) (rnd() % 8);
		for (i = 0; i < m->n_entries; i++)
		{
			raft_entry *e = &ents[i];

			if (t == 0 || rnd() % 3 == 0)
				t = t + 1 + rnd() % 2;
			if (t > m->term)
				t = m->term;
			e->term = t;
			e->index = m->index + 1 + i;
			e->type = (uint8_t) (1 + rnd() % 2);
			e->len = e->type == RAFT_ENTRY_NOOP ? 0 : (uint32_t) (rnd() % 64);
			e->data = data_pool + rnd() % 1024;
		}
		m->entries = ents;
	}
	if (type == RAFT_MSG_SNAPSHOT)
	{
		m->snapshot.index = 1 + rnd() % 1000;
		m->snapshot.term = 1 + rnd() % m->term;
		m->snapshot.config.n = 1 + (uint32_t) (rnd() % 5);
		for (i = 0; i < m->snapshot.config.n; i++)
			m->snapshot.config.voters[i] = 10 + i;
		m->snapshot.len = (uint32_t) (rnd() % 300);
		m->snapshot.data = data_pool + rnd() % 1024;
	}
}

static bool
messages_equal(const raft_message *a, const raft_message *b)
{
	uint32_t	i;

	if (a->type != b->type || a->flags != b->flags || a->from != b->from ||
		a->to != b->to || a->term != b->term || a->log_term != b->log_term ||
		a->index != b->index || a->commit != b->commit || a->hint != b->hint ||
		a->n_entries != b->n_entries)
		return false;
	for (i = 0; i < a->n_entries; i++)
	{
		const raft_entry *x = &a->entries[i],
				   *y = &b->entries[i];

		if (x->term != y->term || x->index != y->index || x->type != y->type ||
			x->len != y->len || (x->len && memcmp(x->data, y->data, x->len)))
			return false;
	}
	if (a->type == RAFT_MSG_SNAPSHOT)
	{
		if (a->snapshot.index != b->snapshot.index ||
			a->snapshot.term != b->snapshot.term ||
			memcmp(&a->snapshot.config, &b->snapshot.config,
				   sizeof(raft_config)) != 0 ||
			a->snapshot.len != b->snapshot.len ||
			(a->snapshot.len &&
			 memcmp(a->snapshot.data, b->snapshot.data, a->snapshot.len)))
			return false;
	}
	return true;
}

/* Re-seal a mutated buffer so the mutation reaches the deeper checks. */
static void
fix_crc(uint8_t *buf, size_t len)
{
	uint32_t	c = raft_crc32c(0, buf, len - 4);

	buf[len - 4] = (uint8_t) c;
	buf[len - 3] = (uint8_t) (c >> 8);
	buf[len - 2] = (uint8_t) (c >> 16);
	buf[len - 1] = (uint8_t) (c >> 24);
}

static void
put_u32le(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t) v;
	p[1] = (uint8_t) (v >> 8);
	p[2] = (uint8_t) (v >> 16);
	p[3] = (uint8_t) (v >> 24);
}

int
main(void)
{
	raft_entry	ents[8];
	raft_message m,
				d;
	uint8_t		buf[8192];
	uint8_t    *copy;
	size_t		len,
				k;
	int			type,
				i,
				rc;
	bool		ok;
	char		detail[256];

	for (k = 0; k < sizeof(data_pool); k++)
		data_pool[k] = (uint8_t) rnd();

	/* 1. round trip of every type */
	ok = true;
	detail[0] = 0;
	for (i = 0; i < 20000 && ok; i++)
	{
		type = 1 + (int) (rnd() % RAFT_MSG_TYPE_MAX);
		random_message(&m, ents, type);
		len = raft_msg_encode(&m, buf, sizeof(buf));
		if (len == 0 || len != raft_msg_encoded_size(&m))
		{
			snprintf(detail, sizeof(detail), "encode failed for type %d", type);
			ok = false;
			break;
		}
		rc = raft_msg_decode(buf, len, &d, NULL);
		if (rc != RAFT_OK || !messages_equal(&m, &d))
		{
			snprintf(detail, sizeof(detail), "type %d rc %d", type, rc);
			ok = false;
		}
		raft_msg_free_decoded(&d, NULL);
	}
	report(ok, "round trip of 20000 random messages of all types", detail);

	/* 2. every strict prefix and every extension is rejected */
	ok = true;
	for (i = 0; i < 300 && ok; i++)
	{
		random_message(&m, ents, 1 + (int) (rnd() % RAFT_MSG_TYPE_MAX));
		len = raft_msg_encode(&m, buf, sizeof(buf));
		for (k = 0; k < len && ok; k++)
		{
			/* exact-size heap copy so a sanitizer sees any overread */
			copy = malloc(k ? k : 1);
			memcpy(copy, buf, k);
			if (raft_msg_decode(copy, k, &d, NULL) != RAFT_EDECODE)
				ok = false;
			free(copy);
		}
		copy = malloc(len + 1);
		memcpy(copy, buf, len);
		copy[len] = 0;
		fix_crc(copy, len + 1);
		if (raft_msg_decode(copy, len + 1, &d, NULL) == RAFT_OK)
			ok = false;
		free(copy);
	}
	report(ok, "truncated and over-long messages rejected", "accepted");

	/* 3. every single-bit flip is caught (checksum) */
	ok = true;
	for (i = 0; i < 100 && ok; i++)
	{
		random_message(&m, ents, 1 + (int) (rnd() % RAFT_MSG_TYPE_MAX));
		len = raft_msg_encode(&m, buf, sizeof(buf));
		for (k = 0; k < len * 8 && ok; k++)
		{
			buf[k / 8] ^= (uint8_t) (1 << (k % 8));
			if (raft_msg_decode(buf, len, &d, NULL) == RAFT_OK)
				ok = false;
			buf[k / 8] ^= (uint8_t) (1 << (k % 8));
		}
	}
	report(ok, "single bit flips rejected", "a flipped message was accepted");

	/*
	 * 4. mutations with a recomputed checksum: whatever the decoder
	 * accepts must be a message that re-encodes to exactly the same bytes
	 * (so it passed every field check) and nothing may crash.
	 */
	ok = true;
	for (i = 0; i < 200000 && ok; i++)
	{
		int			nmut = 1 + (int) (rnd() % 4),
					j;

		random_message(&m, ents, 1 + (int) (rnd() % RAFT_MSG_TYPE_MAX));
		len = raft_msg_encode(&m, buf, sizeof(buf));
		for (j = 0; j < nmut; j++)
			buf[rnd() % (len - 4)] = (uint8_t) rnd();
		fix_crc(buf, len);
		copy = malloc(len);
		memcpy(copy, buf, len);
		rc = raft_msg_decode(copy, len, &d, NULL);
		if (rc == RAFT_OK)
		{
			uint8_t		again[8192];
			size_t		len2 = raft_msg_encode(&d, again, sizeof(again));

			if (len2 != len || memcmp(again, copy, len) != 0)
			{
				snprintf(detail, sizeof(detail),
						 "accepted mutation does not re-encode (iter %d)", i);
				ok = false;
			}
			raft_msg_free_decoded(&d, NULL);
		}
		else if (rc != RAFT_EDECODE)
			ok = false;
		free(copy);
	}
	report(ok, "200000 mutated messages with valid checksum: rejected or canonical",
		   detail);

	/* 5. pure random garbage of random length */
	ok = true;
	for (i = 0; i < 200000 && ok; i++)
	{
		size_t		glen = (size_t) (rnd() % 300);

		copy = malloc(glen ? glen : 1);
		for (k = 0; k < glen; k++)
			copy[k] = (uint8_t) rnd();
		/* half of them get a plausible header and checksum */
		if (glen >= RAFT_WIRE_HEADER + 4 && (i & 1))
		{
			copy[0] = RAFT_WIRE_MAGIC0;
			copy[1] = RAFT_WIRE_MAGIC1;
			copy[2] = RAFT_WIRE_VERSION;
			copy[3] = (uint8_t) (1 + rnd() % RAFT_MSG_TYPE_MAX);
			fix_crc(copy, glen);
		}
		rc = raft_msg_decode(copy, glen, &d, NULL);
		if (rc == RAFT_OK)
			raft_msg_free_decoded(&d, NULL);
		else if (rc != RAFT_EDECODE)
			ok = false;
		free(copy);
	}
	report(ok, "200000 random garbage buffers never crash", "unexpected rc");

	/* 6. a huge entry count in a short message: rejected, no allocation */
	random_message(&m, ents, RAFT_MSG_APPEND);
	m.n_entries = 0;
	len = raft_msg_encode(&m, buf, sizeof(buf));
	put_u32le(buf + 64, 0xFFFFFFFFu);
	fix_crc(buf, len);
	ok = raft_msg_decode(buf, len, &d, NULL) == RAFT_EDECODE;
	put_u32le(buf + 64, 1000);
	fix_crc(buf, len);
	ok = ok && raft_msg_decode(buf, len, &d, NULL) == RAFT_EDECODE;
	report(ok, "oversized entry count rejected before allocating", NULL);

	/* 7. an entry length beyond the buffer / the limit */
	random_message(&m, ents, RAFT_MSG_APPEND);
	m.n_entries = 1;
	ents[0].term = m.term;
	ents[0].index = m.index + 1;
	ents[0].type = RAFT_ENTRY_NORMAL;
	ents[0].len = 10;
	ents[0].data = data_pool;
	m.entries = ents;
	m.log_term = m.term;
	len = raft_msg_encode(&m, buf, sizeof(buf));
	put_u32le(buf + RAFT_WIRE_HEADER + 17, 0x7FFFFFFFu);
	fix_crc(buf, len);
	ok = raft_msg_decode(buf, len, &d, NULL) == RAFT_EDECODE;
	report(ok, "oversized entry length rejected", NULL);

	/* 8. version, type, flags, reserved and semantic checks */
	random_message(&m, ents, RAFT_MSG_HEARTBEAT);
	len = raft_msg_encode(&m, buf, sizeof(buf));
	ok = raft_msg_decode(buf, len, &d, NULL) == RAFT_OK;
	buf[2] = 2;
	fix_crc(buf, len);
	ok = ok && raft_msg_decode(buf, len, &d, NULL) == RAFT_EDECODE;
	buf[2] = RAFT_WIRE_VERSION;
	buf[3] = 0;
	fix_crc(buf, len);
	ok = ok && raft_msg_decode(buf, len, &d, NULL) == RAFT_EDECODE;
	buf[3] = RAFT_MSG_TYPE_MAX + 1;
	fix_crc(buf, len);
	ok = ok && raft_msg_decode(buf, len, &d, NULL) == RAFT_EDECODE;
	buf[3] = RAFT_MSG_HEARTBEAT;
	buf[4] = 0x80;
	fix_crc(buf, len);
	ok = ok && raft_msg_decode(buf, len, &d, NULL) == RAFT_EDECODE;
	buf[4] = 0;
	buf[6] = 1;
	fix_crc(buf, len);
	ok = ok && raft_msg_decode(buf, len, &d, NULL) == RAFT_EDECODE;
	report(ok, "unknown version, type, flags and reserved bytes rejected", NULL);

	/* 9. entries that do not form a valid log piece */
	ok = true;
	for (i = 0; i < 4; i++)
	{
		random_message(&m, ents, RAFT_MSG_APPEND);
		m.log_term = 1;
		m.term = 5;
		m.n_entries = 2;
		m.entries = ents;
		ents[0].term = 2;
		ents[0].index = m.index + 1;
		ents[0].type = RAFT_ENTRY_NORMAL;
		ents[0].len = 0;
		ents[1] = ents[0];
		ents[1].index = m.index + 2;
		if (i == 0)
			ents[1].index = m.index + 3;	/* gap */
		if (i == 1)
			ents[1].term = 1;	/* term goes backwards */
		if (i == 2)
			ents[1].term = 6;	/* term beyond the message's */
		if (i == 3)
		{
			ents[1].type = RAFT_ENTRY_CONFIG;	/* garbage config */
			ents[1].len = 3;
			ents[1].data = data_pool;
		}
		len = raft_msg_encode(&m, buf, sizeof(buf));
		if (raft_msg_decode(buf, len, &d, NULL) != RAFT_EDECODE)
			ok = false;
	}
	report(ok, "inconsistent entries (gap, term order, bad config) rejected",
		   NULL);

	/* 10. configuration payloads */
	{
		raft_config c,
					c2;
		uint8_t		cb[5 + 8 * RAFT_MAX_VOTERS + 8];

		memset(&c, 0, sizeof(c));
		c.n = 3;
		c.voters[0] = 1;
		c.voters[1] = 2;
		c.voters[2] = UINT64_MAX;
		raft_config_encode(&c, cb);
		ok = raft_config_decode(cb, raft_config_encoded_size(&c), &c2) == RAFT_OK &&
			memcmp(&c, &c2, sizeof(c)) == 0;
		ok = ok && raft_config_decode(cb, raft_config_encoded_size(&c) - 1, &c2) != RAFT_OK;
		c.voters[2] = 1;		/* duplicate */
		raft_config_encode(&c, cb);
		ok = ok && raft_config_decode(cb, raft_config_encoded_size(&c), &c2) != RAFT_OK;
		c.voters[2] = 0;		/* RAFT_NONE */
		raft_config_encode(&c, cb);
		ok = ok && raft_config_decode(cb, raft_config_encoded_size(&c), &c2) != RAFT_OK;
		c.n = 0;
		raft_config_encode(&c, cb);
		ok = ok && raft_config_decode(cb, raft_config_encoded_size(&c), &c2) != RAFT_OK;
		put_u32le(cb + 1, RAFT_MAX_VOTERS + 1);
		ok = ok && raft_config_decode(cb, sizeof(cb), &c2) != RAFT_OK;
		report(ok, "configuration payload round trip and rejection", NULL);
	}

	/* 11. a known CRC-32C vector */
	report(raft_crc32c(0, (const uint8_t *) "123456789", 9) == 0xE3069283u,
		   "CRC-32C check value", NULL);

	return failures ? 1 : 0;
}
