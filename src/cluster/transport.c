/*-------------------------------------------------------------------------
 *
 * transport.c
 *	  Raft messages to the peers over libpq, never blocking (see
 *	  transport.h).
 *
 * Each peer is a small state machine:
 *
 *	DISCONNECTED --(due)--> CONNECTING --(PQconnectPoll OK)--> IDLE
 *	IDLE --(messages queued)--> BUSY --(result read)--> IDLE
 *	any --(error or timeout)--> DISCONNECTED, next attempt after a backoff
 *
 * Only the Raft worker uses this, from its own memory context.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "lib/stringinfo.h"
#include "libpq-fe.h"
#include "miscadmin.h"
#include "storage/fd.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "cluster/transport.h"
#include "remote/node.h"

/*
 * A batch of messages is one call of this statement on the peer, prepared
 * once per connection (it runs hundreds of times a second under load).
 */
#define DELIVER_STMT	"distx_raft_deliver"
#define DELIVER_SQL		"SELECT distx._raft_deliver($1, $2, $3, $4)"

/*
 * At most this many bytes queued per peer, more is dropped; but a single
 * message of up to PEER_MESSAGE_MAX (the receiver's limit) goes alone.
 */
#define PEER_QUEUE_MAX		(4 * 1024 * 1024)
#define PEER_MESSAGE_MAX	(256 * 1024 * 1024)
/* reconnect backoff */
#define PEER_BACKOFF_MIN_MS	100
#define PEER_BACKOFF_MAX_MS	2000

typedef enum PeerState
{
	PEER_DISCONNECTED = 0,
	PEER_CONNECTING,
	PEER_IDLE,
	PEER_BUSY
} PeerState;

typedef struct Peer
{
	uint64		id;
	char		name[DXS_NAME_LEN];
	PeerState	state;
	PGconn	   *conn;
	PostgresPollingStatusType poll; /* what PQconnectPoll waits for */
	bool		want_write;		/* BUSY: output not flushed yet */
	bool		preparing;		/* BUSY: preparing the delivery statement */
	TimestampTz since;			/* entered CONNECTING or BUSY */
	TimestampTz next_attempt;
	int			backoff_ms;
	bool		reported_down;	/* the failure was logged */
	StringInfoData queue;		/* [u32 len][msg] frames */
	int			queued;
	uint64		sent;
	uint64		dropped;
	char		last_error[CLUSTER_ERR_LEN];
} Peer;

static MemoryContext transport_cxt = NULL;
static Peer peers[CLUSTER_MAX_MEMBERS];
static int	npeers = 0;
static uint64 my_cluster_id;
static uint64 my_id;
static char my_name[DXS_NAME_LEN];

static void
peer_set_error(Peer *p, const char *msg)
{
	strlcpy(p->last_error, msg, sizeof(p->last_error));
}

/* the longest a connection attempt or a delivery may take */
static int
peer_timeout_ms(void)
{
	return Max(5000, 3 * distx_raft_election_timeout);
}

void
transport_init(uint64 cluster_id, uint64 self_id, const char *self_name)
{
	if (transport_cxt == NULL)
		transport_cxt = AllocSetContextCreate(TopMemoryContext, "distx raft transport",
											  ALLOCSET_DEFAULT_SIZES);
	my_cluster_id = cluster_id;
	my_id = self_id;
	strlcpy(my_name, self_name, sizeof(my_name));
}

static Peer *
find_peer(uint64 id)
{
	int			i;

	for (i = 0; i < npeers; i++)
		if (peers[i].id == id)
			return &peers[i];
	return NULL;
}

/* why may point into the connection: it is used before PQfinish */
static void
peer_disconnect(Peer *p, const char *why)
{
	if (why != NULL)
	{
		char		msg[CLUSTER_ERR_LEN];
		size_t		len;

		strlcpy(msg, why, sizeof(msg));
		len = strlen(msg);
		while (len > 0 && (msg[len - 1] == '\n' || msg[len - 1] == '\r'))
			msg[--len] = '\0';
		peer_set_error(p, msg);
		if (!p->reported_down)
			ereport(LOG,
					(errmsg("distx raft: no connection to node %llu (\"%s\")",
							(unsigned long long) p->id, p->name),
					 errdetail_internal("%s", msg)));
		p->reported_down = true;
	}
	if (p->conn != NULL)
	{
		PQfinish(p->conn);
		p->conn = NULL;
		ReleaseExternalFD();
	}
	p->state = PEER_DISCONNECTED;
	p->want_write = false;
	p->preparing = false;
	p->dropped += p->queued;
	resetStringInfo(&p->queue);
	p->queued = 0;
	p->backoff_ms = Min(Max(p->backoff_ms * 2, PEER_BACKOFF_MIN_MS), PEER_BACKOFF_MAX_MS);
	p->next_attempt = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), p->backoff_ms);
}

void
transport_set_peer(uint64 id, const char *name)
{
	Peer	   *p;
	MemoryContext old;

	if (id == my_id || name == NULL || name[0] == '\0')
		return;
	p = find_peer(id);
	if (p != NULL)
	{
		if (strcmp(p->name, name) != 0)
		{
			strlcpy(p->name, name, sizeof(p->name));
			peer_disconnect(p, NULL);
			p->next_attempt = 0;
		}
		return;
	}
	if (npeers >= CLUSTER_MAX_MEMBERS)
		return;
	p = &peers[npeers++];
	memset(p, 0, sizeof(Peer));
	p->id = id;
	strlcpy(p->name, name, sizeof(p->name));
	old = MemoryContextSwitchTo(transport_cxt);
	initStringInfo(&p->queue);
	MemoryContextSwitchTo(old);
}

const char *
transport_peer_name(uint64 id)
{
	Peer	   *p = find_peer(id);

	return p ? p->name : NULL;
}

void
transport_send(uint64 to, const uint8 *buf, uint32 len)
{
	Peer	   *p = find_peer(to);
	uint8		hdr[4];

	if (p == NULL)
		return;					/* nobody knows how to reach it yet */
	/* one message alone may exceed the queue's bound (a large snapshot) */
	if (p->state == PEER_DISCONNECTED || p->state == PEER_CONNECTING ||
		(p->queue.len > 0 && p->queue.len + len + 4 > PEER_QUEUE_MAX) ||
		len > PEER_MESSAGE_MAX)
	{
		p->dropped++;
		return;
	}
	hdr[0] = (uint8) len;
	hdr[1] = (uint8) (len >> 8);
	hdr[2] = (uint8) (len >> 16);
	hdr[3] = (uint8) (len >> 24);
	appendBinaryStringInfo(&p->queue, (const char *) hdr, 4);
	appendBinaryStringInfo(&p->queue, (const char *) buf, (int) len);
	p->queued++;
}

/* ------------------------------------------------------------------ */

/*
 * Start connecting: the connection parameters come from the catalog (the
 * server of that name and its user mapping), read in a transaction of our
 * own if there is none.
 */
static void
peer_start_connect(Peer *p)
{
	MemoryContext old = CurrentMemoryContext;
	bool		own_xact = !IsTransactionState();
	const char **keywords = NULL;
	const char **values = NULL;
	PGconn	   *volatile conn = NULL;
	char	   *volatile error = NULL;

	/* the connection's socket counts against max_files_per_process */
	if (!AcquireExternalFD())
	{
		peer_disconnect(p, "too many open files in the Raft worker");
		return;
	}
	if (own_xact)
		StartTransactionCommand();
	PG_TRY();
	{
		DistxNode  *node = node_lookup(p->name, false);

		node_conn_params(node, &keywords, &values);
		conn = PQconnectStartParams(keywords, values, false);
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(old);
		edata = CopyErrorData();
		FlushErrorState();
		error = MemoryContextStrdup(transport_cxt, edata->message);
		FreeErrorData(edata);
	}
	PG_END_TRY();
	if (own_xact)
	{
		if (error != NULL)
			AbortCurrentTransaction();
		else
			CommitTransactionCommand();
	}
	MemoryContextSwitchTo(old);

	if (error == NULL && (conn == NULL || PQstatus(conn) == CONNECTION_BAD))
		error = MemoryContextStrdup(transport_cxt,
									conn ? PQerrorMessage(conn) : "out of memory");
	if (error != NULL)
	{
		p->conn = conn;			/* peer_disconnect finishes it */
		if (conn == NULL)
			ReleaseExternalFD();
		peer_disconnect(p, error);
		pfree(error);
		return;
	}
	p->conn = conn;
	p->state = PEER_CONNECTING;
	p->poll = PGRES_POLLING_WRITING;
	p->since = GetCurrentTimestamp();
}

static void
peer_connect_poll(Peer *p)
{
	PostgresPollingStatusType st = PQconnectPoll(p->conn);
	int			rc;

	if (st == PGRES_POLLING_OK)
	{
		Oid			types[4] = {INT8OID, INT8OID, TEXTOID, BYTEAOID};

		if (PQsetnonblocking(p->conn, 1) != 0 ||
			!PQsendPrepare(p->conn, DELIVER_STMT, DELIVER_SQL, 4, types))
		{
			peer_disconnect(p, PQerrorMessage(p->conn));
			return;
		}
		/* batches wait until the statement is prepared */
		p->state = PEER_BUSY;
		p->preparing = true;
		p->since = GetCurrentTimestamp();
		rc = PQflush(p->conn);
		if (rc < 0)
		{
			peer_disconnect(p, PQerrorMessage(p->conn));
			return;
		}
		p->want_write = (rc == 1);
		p->backoff_ms = 0;
		p->last_error[0] = '\0';
		if (p->reported_down)
			ereport(LOG,
					(errmsg("distx raft: connected to node %llu (\"%s\")",
							(unsigned long long) p->id, p->name)));
		p->reported_down = false;
		return;
	}
	if (st == PGRES_POLLING_FAILED)
	{
		peer_disconnect(p, PQerrorMessage(p->conn));
		return;
	}
	p->poll = st;
}

static void
peer_send_batch(Peer *p)
{
	char		cluster[32];
	char		from[32];
	const char *values[4];
	int			lengths[4] = {0, 0, 0, 0};
	int			formats[4] = {0, 0, 0, 1};
	int			rc;

	snprintf(cluster, sizeof(cluster), INT64_FORMAT, (int64) my_cluster_id);
	snprintf(from, sizeof(from), INT64_FORMAT, (int64) my_id);
	values[0] = cluster;
	values[1] = from;
	values[2] = my_name;
	values[3] = p->queue.data;
	lengths[3] = p->queue.len;
	if (!PQsendQueryPrepared(p->conn, DELIVER_STMT, 4, values, lengths, formats, 0))
	{
		peer_disconnect(p, PQerrorMessage(p->conn));
		return;
	}
	p->sent += p->queued;
	resetStringInfo(&p->queue);
	p->queued = 0;
	p->state = PEER_BUSY;
	p->since = GetCurrentTimestamp();
	rc = PQflush(p->conn);
	if (rc < 0)
		peer_disconnect(p, PQerrorMessage(p->conn));
	else
		p->want_write = (rc == 1);
}

static void
peer_read_results(Peer *p)
{
	if (p->want_write)
	{
		int			rc = PQflush(p->conn);

		if (rc < 0)
		{
			peer_disconnect(p, PQerrorMessage(p->conn));
			return;
		}
		p->want_write = (rc == 1);
	}
	if (!PQconsumeInput(p->conn))
	{
		peer_disconnect(p, PQerrorMessage(p->conn));
		return;
	}
	while (!PQisBusy(p->conn))
	{
		PGresult   *res = PQgetResult(p->conn);

		if (res == NULL)
		{
			p->state = PEER_IDLE;
			p->preparing = false;
			return;
		}
		if (p->preparing)
		{
			if (PQresultStatus(res) != PGRES_COMMAND_OK)
			{
				/* no distx there, or not usable by this mapping's user */
				peer_disconnect(p, PQresultErrorMessage(res));
				PQclear(res);
				return;
			}
		}
		else if (PQresultStatus(res) != PGRES_TUPLES_OK)
		{
			const char *msg = PQresultErrorMessage(res);
			const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);

			/*
			 * The peer refused the batch: keep the connection, say why.  A
			 * peer whose Raft worker is starting or stopping (57P03) is
			 * normal for a moment, so that is only a LOG line.
			 */
			if (strcmp(p->last_error, msg) != 0)
				ereport(state && strcmp(state, "57P03") == 0 ? LOG : WARNING,
						(errmsg("distx raft: node %llu (\"%s\") refused messages",
								(unsigned long long) p->id, p->name),
						 errdetail_internal("%s", msg)));
			peer_set_error(p, msg);
		}
		else if (PQntuples(res) == 1 && !PQgetisnull(res, 0, 0))
		{
			uint64		got = (uint64) strtoi64(PQgetvalue(res, 0, 0), NULL, 10);

			if (got != p->id)
			{
				char		buf[CLUSTER_ERR_LEN];

				snprintf(buf, sizeof(buf),
						 "server \"%s\" reached node %llu instead of node %llu",
						 p->name, (unsigned long long) got, (unsigned long long) p->id);
				if (strcmp(p->last_error, buf) != 0)
					ereport(WARNING, (errmsg("distx raft: %s", buf)));
				peer_set_error(p, buf);
			}
		}
		PQclear(res);
	}
}

/*
 * Send what is queued to every idle peer now, rather than at the next
 * round of the worker's loop (the leader's appends, sent while it fsyncs).
 */
void
transport_kick(void)
{
	int			i;

	for (i = 0; i < npeers; i++)
	{
		Peer	   *p = &peers[i];

		if (p->state == PEER_IDLE && p->queued > 0 &&
			PQstatus(p->conn) == CONNECTION_OK)
			peer_send_batch(p);
	}
}

int
transport_max_events(void)
{
	return npeers;
}

void
transport_add_events(WaitEventSet *set)
{
	int			i;

	for (i = 0; i < npeers; i++)
	{
		Peer	   *p = &peers[i];
		uint32		ev = 0;

		if (p->conn == NULL || PQsocket(p->conn) < 0)
			continue;
		if (p->state == PEER_CONNECTING)
			ev = p->poll == PGRES_POLLING_READING ? WL_SOCKET_READABLE : WL_SOCKET_WRITEABLE;
		else if (p->state == PEER_BUSY)
			ev = WL_SOCKET_READABLE | (p->want_write ? WL_SOCKET_WRITEABLE : 0);
		else
			continue;
		AddWaitEventToSet(set, ev, PQsocket(p->conn), NULL, p);
	}
}

void
transport_progress(WaitEvent *occurred, int noccurred)
{
	TimestampTz now = GetCurrentTimestamp();
	int			i;
	int			j;

	for (i = 0; i < npeers; i++)
	{
		Peer	   *p = &peers[i];
		bool		ready = false;

		for (j = 0; j < noccurred; j++)
			if (occurred[j].user_data == p &&
				(occurred[j].events & (WL_SOCKET_READABLE | WL_SOCKET_WRITEABLE)))
				ready = true;

		switch (p->state)
		{
			case PEER_DISCONNECTED:
				if (now >= p->next_attempt)
					peer_start_connect(p);
				break;
			case PEER_CONNECTING:
				if (ready)
					peer_connect_poll(p);
				else if (TimestampDifferenceExceeds(p->since, now, peer_timeout_ms()))
					peer_disconnect(p, "timeout while connecting");
				break;
			case PEER_BUSY:
				if (ready)
					peer_read_results(p);
				else if (TimestampDifferenceExceeds(p->since, now, peer_timeout_ms()))
					peer_disconnect(p, "timeout while delivering messages");
				break;
			case PEER_IDLE:
				break;
		}
		/* a connection that broke while idle */
		if (p->state == PEER_IDLE && PQstatus(p->conn) != CONNECTION_OK)
			peer_disconnect(p, PQerrorMessage(p->conn));
		if (p->state == PEER_IDLE && p->queued > 0)
			peer_send_batch(p);
	}
}

int
transport_status(ClusterPeerInfo *out, int max)
{
	int			i;
	int			n = 0;

	for (i = 0; i < npeers && n < max; i++)
	{
		out[n].id = peers[i].id;
		out[n].connected = peers[i].state == PEER_IDLE || peers[i].state == PEER_BUSY;
		out[n].sent = peers[i].sent;
		out[n].dropped = peers[i].dropped;
		strlcpy(out[n].last_error, peers[i].last_error, CLUSTER_ERR_LEN);
		n++;
	}
	return n;
}

void
transport_shutdown(void)
{
	int			i;

	for (i = 0; i < npeers; i++)
		if (peers[i].conn != NULL)
		{
			PQfinish(peers[i].conn);
			peers[i].conn = NULL;
		}
	npeers = 0;
}
