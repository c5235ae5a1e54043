/*-------------------------------------------------------------------------
 *
 * views.c
 *	  Set-returning functions behind the distx.node_health and
 *	  distx.transactions views.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "foreign/foreign.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "distx.h"
#include "remote/health.h"
#include "txn/txn.h"

PG_FUNCTION_INFO_V1(distx_node_health);
PG_FUNCTION_INFO_V1(distx_inflight);

static const char *
circuit_state_name(CircuitState s)
{
	switch (s)
	{
		case CIRCUIT_CLOSED:
			return "closed";
		case CIRCUIT_OPEN:
			return "open";
		case CIRCUIT_HALF_OPEN:
			return "half_open";
	}
	return "unknown";
}

/*
 * (server oid, circuit, consecutive_failures, in_use, open_connections,
 *  in_doubt, last_error, last_failure_at, opened_at, last_success_at)
 */
Datum
distx_node_health(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	NodeHealthSnapshot *nodes;
	int			n;
	int			i;

	InitMaterializedSRF(fcinfo, 0);
	n = health_snapshot(&nodes);
	for (i = 0; i < n; i++)
	{
		Datum		values[10];
		bool		nulls[10];

		memset(nulls, 0, sizeof(nulls));
		values[0] = ObjectIdGetDatum(nodes[i].serverid);
		values[1] = CStringGetTextDatum(circuit_state_name(nodes[i].state));
		values[2] = Int32GetDatum(nodes[i].consecutive_failures);
		values[3] = Int32GetDatum(nodes[i].in_use);
		values[4] = Int32GetDatum(nodes[i].open_connections);
		values[5] = Int32GetDatum(nodes[i].in_doubt);
		if (nodes[i].last_error[0])
			values[6] = CStringGetTextDatum(nodes[i].last_error);
		else
			nulls[6] = true;
		values[7] = TimestampTzGetDatum(nodes[i].last_failure_at);
		nulls[7] = nodes[i].last_failure_at == 0;
		values[8] = TimestampTzGetDatum(nodes[i].opened_at);
		nulls[8] = nodes[i].state == CIRCUIT_CLOSED;
		values[9] = TimestampTzGetDatum(nodes[i].last_success_at);
		nulls[9] = nodes[i].last_success_at == 0;
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

static const char *
inflight_state_name(InflightState s)
{
	switch (s)
	{
		case INFLIGHT_NONE:
			return "none";
		case INFLIGHT_ACTIVE:
			return "active";
		case INFLIGHT_PREPARING:
			return "preparing";
		case INFLIGHT_PREPARED:
			return "prepared";
		case INFLIGHT_COMMITTING:
			return "committing";
		case INFLIGHT_ABORTING:
			return "aborting";
	}
	return "unknown";
}

static const char *
participant_state_name(char c)
{
	switch (c)
	{
		case 'a':
			return "active";
		case 'p':
			return "prepared";
		case 'c':
			return "committed";
		case '1':
			return "committed_one_phase";
		case 'r':
			return "rolled_back";
	}
	return "unknown";
}

/* (pid, xid, state, participants oid[], participant_states text[], started_at) */
Datum
distx_inflight(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	InflightTxn *txns;
	int			n;
	int			i;

	InitMaterializedSRF(fcinfo, 0);
	n = txn_inflight_snapshot(&txns);
	for (i = 0; i < n; i++)
	{
		Datum		values[6];
		bool		nulls[6];
		Datum	   *servers;
		Datum	   *states;
		int			j;
		InflightTxn *t = &txns[i];

		memset(nulls, 0, sizeof(nulls));
		servers = palloc(sizeof(Datum) * Max(t->nparticipants, 1));
		states = palloc(sizeof(Datum) * Max(t->nparticipants, 1));
		for (j = 0; j < t->nparticipants; j++)
		{
			servers[j] = ObjectIdGetDatum(t->participants[j]);
			states[j] = CStringGetTextDatum(participant_state_name(t->participant_state[j]));
		}
		values[0] = Int32GetDatum(t->pid);
		values[1] = Int64GetDatum((int64) t->fxid);
		nulls[1] = t->fxid == 0;
		values[2] = CStringGetTextDatum(inflight_state_name(t->state));
		values[3] = PointerGetDatum(construct_array(servers, t->nparticipants, OIDOID,
													sizeof(Oid), true, TYPALIGN_INT));
		values[4] = PointerGetDatum(construct_array(states, t->nparticipants, TEXTOID,
													-1, false, TYPALIGN_INT));
		values[5] = TimestampTzGetDatum(t->started_at);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}
