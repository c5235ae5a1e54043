/*-------------------------------------------------------------------------
 *
 * state.c
 *	  The apply path for coordinator state, single-node mode: changes are
 *	  written to the distx tables of this database.
 *
 * The decision row is written with the heap and index access methods rather
 * than SPI: it is written from the pre-commit callback, where neither the
 * caller's privileges nor triggers should matter.  Lookups use the latest
 * snapshot, so that a REPEATABLE READ caller of distx.recover() cannot miss
 * a decision that committed after its snapshot was taken.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/transam.h"
#include "access/xact.h"
#include "catalog/indexing.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/xid8.h"

#include "cluster/state.h"
#include "txn/gid.h"

static bool cluster_commit_decided(FullTransactionId fxid, Oid serverid);

#define Natts_decisions			3
#define Anum_decisions_xid		1
#define Anum_decisions_participants	2
#define Anum_decisions_decided_at	3

static Oid
decisions_relid(void)
{
	Oid			nsp = get_namespace_oid("distx", false);
	Oid			relid = get_relname_relid("decisions", nsp);

	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("table distx.decisions does not exist"),
				 errhint("Is the distx extension installed in this database?")));
	return relid;
}

static Oid
decisions_pkey(void)
{
	Oid			nsp = get_namespace_oid("distx", false);

	return get_relname_relid("decisions_pkey", nsp);
}

void
state_record_commit_decision(FullTransactionId fxid, const Oid *servers,
							 int nservers)
{
	Relation	rel;
	HeapTuple	tup;
	Datum		values[Natts_decisions];
	bool		nulls[Natts_decisions];
	Datum	   *elems;
	int			i;

	elems = palloc(sizeof(Datum) * nservers);
	for (i = 0; i < nservers; i++)
		elems[i] = ObjectIdGetDatum(servers[i]);

	memset(nulls, 0, sizeof(nulls));
	values[Anum_decisions_xid - 1] = FullTransactionIdGetDatum(fxid);
	values[Anum_decisions_participants - 1] =
		PointerGetDatum(construct_array(elems, nservers, OIDOID,
										sizeof(Oid), true, TYPALIGN_INT));
	values[Anum_decisions_decided_at - 1] =
		TimestampTzGetDatum(GetCurrentTimestamp());

	rel = table_open(decisions_relid(), RowExclusiveLock);
	tup = heap_form_tuple(RelationGetDescr(rel), values, nulls);
	CatalogTupleInsert(rel, tup);
	heap_freetuple(tup);
	table_close(rel, NoLock);
}

/*
 * The participants are checked too: after a crash of the coordinator an xid
 * whose WAL never reached disk is handed out again, so a gid prepared by the
 * lost transaction can meet a decision of the new transaction with the same
 * xid.  That decision names only the new transaction's participants (one
 * that shares a participant with the lost one cannot prepare there: the gid
 * is taken), so it never commits the lost transaction's gids.
 */
bool
state_commit_decided(FullTransactionId fxid, Oid serverid)
{
	Relation	rel;
	SysScanDesc scan;
	ScanKeyData key;
	Snapshot	snapshot;
	HeapTuple	tup;
	bool		found = false;

	rel = table_open(decisions_relid(), AccessShareLock);
	ScanKeyInit(&key, Anum_decisions_xid, BTEqualStrategyNumber,
				F_XID8EQ, FullTransactionIdGetDatum(fxid));
	snapshot = RegisterSnapshot(GetLatestSnapshot());
	scan = systable_beginscan(rel, decisions_pkey(), true, snapshot, 1, &key);
	while (!found && HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		bool		isnull;
		Datum		d;
		ArrayType  *arr;
		Datum	   *elems;
		int			n;
		int			i;

		d = heap_getattr(tup, Anum_decisions_participants,
						 RelationGetDescr(rel), &isnull);
		if (isnull)
			continue;
		arr = DatumGetArrayTypeP(d);
		deconstruct_array(arr, OIDOID, sizeof(Oid), true, TYPALIGN_INT,
						  &elems, NULL, &n);
		for (i = 0; i < n; i++)
			if (DatumGetObjectId(elems[i]) == serverid)
				found = true;
	}
	systable_endscan(scan);
	UnregisterSnapshot(snapshot);
	table_close(rel, AccessShareLock);
	if (!found)
		found = cluster_commit_decided(fxid, serverid);
	return found;
}

/*
 * A server that left a Raft cluster keeps its copy of the cluster's
 * decisions: a transaction it decided in the cluster just before it left
 * is committed by that decision, here as by the cluster's coordinator
 * (a conditional decision only if this transaction, finished by now,
 * committed).
 */
static bool
cluster_commit_decided(FullTransactionId fxid, Oid serverid)
{
	Oid			argtypes[3] = {TEXTOID, TEXTOID, OIDOID};
	Datum		args[3];
	bool		result = false;

	args[0] = CStringGetTextDatum(gid_prefix());
	args[1] = CStringGetTextDatum(psprintf(UINT64_FORMAT, U64FromFullTransactionId(fxid)));
	args[2] = ObjectIdGetDatum(serverid);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute_with_args("SELECT conditional FROM distx.cluster_decisions "
							  "WHERE origin = $1 AND xid = $2::pg_catalog.xid8 "
							  "AND outcome = 'commit' AND $3 = ANY (participant_oids)",
							  3, argtypes, args, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read distx.cluster_decisions");
	if (SPI_processed == 1)
	{
		bool		isnull;
		bool		conditional = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0],
															 SPI_tuptable->tupdesc,
															 1, &isnull));

		result = !conditional ||
			TransactionIdDidCommit(XidFromFullTransactionId(fxid));
	}
	SPI_finish();
	return result;
}

void
state_forget_decision(FullTransactionId fxid)
{
	Relation	rel;
	SysScanDesc scan;
	ScanKeyData key;
	HeapTuple	tup;
	Snapshot	snapshot;

	rel = table_open(decisions_relid(), RowExclusiveLock);
	ScanKeyInit(&key, Anum_decisions_xid, BTEqualStrategyNumber,
				F_XID8EQ, FullTransactionIdGetDatum(fxid));
	snapshot = RegisterSnapshot(GetLatestSnapshot());
	scan = systable_beginscan(rel, decisions_pkey(), true, snapshot, 1, &key);
	while (HeapTupleIsValid(tup = systable_getnext(scan)))
		simple_heap_delete(rel, &tup->t_self);
	systable_endscan(scan);
	UnregisterSnapshot(snapshot);
	table_close(rel, NoLock);
}
