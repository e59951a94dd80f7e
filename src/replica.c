/*-------------------------------------------------------------------------
 *
 * replica.c
 *	  Read replicas: the standby's hand-over of journal records to the
 *	  primary, the primary's receiving end and inbox, and the standby's
 *	  decision whether it may serve licensees at all.
 *
 * Standby (RecoveryInProgress()): the flusher calls
 * licdata_replica_hand_over() with each batch (and with an empty batch at
 * the end of each pass, a heartbeat).  It connects with
 * licdata.primary_conninfo (empty: the standby's own primary_conninfo) to
 * licdata's home database, and runs licdata_internal._receive_records(node,
 * records, pending) there; only when that call has returned (the primary
 * committed) does the flusher advance its files' tails.  A failure raises:
 * the flusher's pass ends and the batch is sent again next pass (the
 * primary skips what it already has).  Each success stores the time in
 * LicdataShared.replica_ok_at; backends refuse licensee statements (LD009)
 * once that is older than licdata.standby_grace, with a hint naming the
 * cause kept in replica_cause.
 *
 * Day quotas: a standby serves them from quota it leases from the primary
 * (lease.c); its flusher gives back idle leases after each hand-over, and
 * all it holds when it exits.  Per-query row limits need no shared counter
 * and are enforced as on the primary.
 *
 * Primary: licdata_internal._receive_records (SECURITY DEFINER, executable by
 * licdata_replica only) checks the records' framing and inserts them into
 * licdata.replica_inbox unless their reference is already there or in
 * audit_log; it updates licdata.replica_nodes (last contact, pending,
 * handed over) and wakes the flusher, which moves the inbox with its own
 * C path (licdata_replica_drain) and deletes what it moved in the same
 * transaction.
 *
 * Wire format of 'records' (bytea, host byte order: primary and standby
 * run the same build, as physical replication requires): "LDRB", uint32
 * version, uint32 count, then per record: uint16 name length, the journal
 * file name, uint64 position, uint8 dead, uint32 use_size, uint32 length,
 * the record's bytes.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/pg_type.h"
#include "common/file_perm.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "libpq-fe.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/postmaster.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#include "errcodes.h"
#include "lease.h"
#include "licdata.h"
#include "meter.h"
#include "replica.h"
#include "shmem.h"

#define RB_MAGIC	"LDRB"
#define RB_VERSION	1
#define INBOX_BATCH	2000
#define HAND_OVER_TIMEOUT_MS	60000	/* one _receive_records call, at most */

char	   *licdata_node_name_setting = "";
uint64		licdata_node_id = 0;	/* see licdata_replica_node_init */
char	   *licdata_primary_conninfo = "";
int			licdata_standby_grace_ms = 10000;

static PGconn *conn = NULL;		/* the flusher's connection to the primary */

/* The flusher's hand-over state, for its server log (see licdata_replica_report_error). */
static bool in_hand_over = false;	/* a hand-over is running (an error is its failure) */
static int64 failures = 0;		/* failed hand-overs since the last success */
static TimestampTz failing_since = 0;
static uint32 failing_cause = REPLICA_OK;	/* the cause last logged */
static char *conn_ci = NULL;	/* the connection string it was made with */

void
licdata_replica_define_gucs(void)
{
	DefineCustomStringVariable("licdata.node_name",
							   "This node's name in licdata.usage.node, licdata.audit_log.node and licdata.nodes.",
							   "Empty: cluster_name, or else the host name and port.",
							   &licdata_node_name_setting,
							   "",
							   PGC_POSTMASTER,
							   0,
							   NULL, NULL, NULL);
	DefineCustomStringVariable("licdata.primary_conninfo",
							   "Connection string a standby's licdata worker uses to hand its records to the primary.",
							   "Empty: the standby's own primary_conninfo.  The database is licdata's home database unless given.",
							   &licdata_primary_conninfo,
							   "",
							   PGC_SIGHUP,
							   GUC_SUPERUSER_ONLY,
							   NULL, NULL, NULL);
	DefineCustomIntVariable("licdata.standby_grace",
							"How long a standby serves licensees without handing its records to the primary.",
							"After this, its licensee statements are refused (LD009) until a hand-over succeeds.",
							&licdata_standby_grace_ms,
							10000, 0, INT_MAX / 2,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);
	licdata_lease_define_gucs();
}

/* licdata.node_name, else cluster_name, else "<host>:<port>". */
const char *
licdata_node_name(void)
{
	static char name[NAMEDATALEN];

	if (licdata_node_name_setting && licdata_node_name_setting[0])
		return licdata_node_name_setting;
	if (cluster_name && cluster_name[0])
		return cluster_name;
	if (name[0] == '\0')
	{
		char		host[NAMEDATALEN];

		if (gethostname(host, sizeof(host)) != 0)
			strlcpy(host, "localhost", sizeof(host));
		host[sizeof(host) - 1] = '\0';
		snprintf(name, sizeof(name), "%s:%d", host, PostPortNumber);
	}
	return name;
}

/* ---- the node's identity, stamped into its journal files ---- */

#define NODE_ID_FILE	LICDATA_DIR "/node_id"

static bool
write_node_id(uint64 id)
{
	char		buf[32];
	char		tmp[MAXPGPATH];
	int			fd;
	int			len;
	bool		ok;

	len = snprintf(buf, sizeof(buf), "%016llx\n", (unsigned long long) id);
	snprintf(tmp, sizeof(tmp), "%s.tmp", NODE_ID_FILE);
	(void) mkdir(LICDATA_DIR, pg_dir_create_mode);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | PG_BINARY, pg_file_create_mode);
	if (fd < 0)
		return false;
	ok = write(fd, buf, len) == len && fsync(fd) == 0;
	ok = (close(fd) == 0) && ok;
	if (ok)
		ok = rename(tmp, NODE_ID_FILE) == 0;
	if (ok)
	{
		fd = open(LICDATA_DIR, O_RDONLY | PG_BINARY, 0);
		if (fd >= 0)
		{
			(void) fsync(fd);
			close(fd);
		}
	}
	return ok;
}

static uint64
read_node_id(bool *found)
{
	char		buf[32];
	int			fd;
	ssize_t		n;
	unsigned long long v = 0;
	char		end = 0;

	*found = false;
	fd = open(NODE_ID_FILE, O_RDONLY | PG_BINARY, 0);
	if (fd < 0)
		return 0;
	*found = true;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	if (sscanf(buf, "%16llx%c", &v, &end) != 2 || end != '\n')
		return 0;
	return (uint64) v;
}

/*
 * The postmaster, at load (_PG_init, in the data directory): this node's
 * identity, licdata_node_id, inherited by every process it starts.  It is
 * kept in pg_licdata/node_id, outside the journal, and drawn anew (64
 * random bits, never 0) when that file is missing or unreadable, or when
 * this data directory is a restored base backup starting for the first
 * time: PostgreSQL 15 has a backup_label in the data directory only then
 * (pg_basebackup, pg_rewind and pg_backup_start/stop copies all leave one;
 * the startup process renames it before any backend can connect).  A base
 * backup copies node_id with the journal, so without that the copy would
 * take the files of the node it was made from for its own (journal.h,
 * "Whose files").  Any failure: a warning, and files unstamped (0), as
 * before.
 */
void
licdata_replica_node_init(void)
{
	struct stat st;
	bool		found = false;
	bool		restored = stat("backup_label", &st) == 0;
	uint64		id = restored ? 0 : read_node_id(&found);

	if (id != 0)
	{
		licdata_node_id = id;
		return;
	}
	do
	{
		if (!pg_strong_random(&id, sizeof(id)))
		{
			ereport(WARNING,
					(errmsg("licdata could not draw a node identity; journal files are not stamped with their node")));
			return;
		}
	} while (id == 0);
	if (!write_node_id(id))
	{
		ereport(WARNING,
				(errcode_for_file_access(),
				 errmsg("could not write file \"%s\": %m", NODE_ID_FILE),
				 errdetail("Journal files are not stamped with their node until it can be written.")));
		return;
	}
	licdata_node_id = id;
	if (restored)
		ereport(LOG,
				(errmsg("licdata: this data directory is a restored base backup; its node identity is now %016llx",
						(unsigned long long) id),
				 errdetail("Journal files copied from the node it was made from are left to that node.")));
	else if (found)
		ereport(WARNING,
				(errmsg("file \"%s\" was not valid; this node's identity is now %016llx",
						NODE_ID_FILE, (unsigned long long) id),
				 errdetail("Journal files stamped with its earlier identity are treated as another node's.")));
}

/* ---- backends on a standby ---- */

static const char *
cause_hint(uint32 cause)
{
	switch (cause)
	{
		case REPLICA_NO_CONNINFO:
			return "This standby has no connection string for the primary: the operator sets licdata.primary_conninfo (or primary_conninfo). Until then, connect to the primary.";
		case REPLICA_CONNECT_FAILED:
			return "This standby could not connect to the primary (its server log says why). Connect to the primary, or retry when the standby reaches it again.";
		case REPLICA_REFUSED:
			return "The primary refused this standby's records (the standby's server log says why): the operator checks that the role in licdata.primary_conninfo is a member of licdata_replica. Until then, connect to the primary.";
		case REPLICA_NO_DATABASE:
			return "licdata has no home database on this standby (licdata.database). Connect to the primary.";
		default:
			return "The licdata worker of this standby has not handed records to the primary: check that it runs (the standby's server log). Connect to the primary meanwhile.";
	}
}

/*
 * On a standby, may licensees be served?  Only while the flusher's last
 * acknowledged hand-over is at most licdata.standby_grace old: otherwise
 * their records could not reach the primary, and the statement is refused
 * (LD009) at once.  No-op on a primary.
 */
void
licdata_replica_check_serving(void)
{
	TimestampTz ok_at;
	TimestampTz now;
	long		age_ms;

	if (!RecoveryInProgress())
		return;
	ok_at = (TimestampTz) pg_atomic_read_u64(&licdata_shared->replica_ok_at);
	now = GetCurrentTimestamp();
	age_ms = (long) ((now - ok_at) / 1000);
	if (age_ms <= licdata_standby_grace_ms)
		return;
	ereport(ERROR,
			(errcode(ERRCODE_LD_METERING_FAILED),
			 errmsg("could not hand metering records to the primary, so the query is refused"),
			 errdetail("This standby has not handed its records to the primary for %ld ms; licdata.standby_grace is %d ms.",
					   age_ms, licdata_standby_grace_ms),
			 errhint("%s", cause_hint(pg_atomic_read_u32(&licdata_shared->replica_cause)))));
}

/* ---- the flusher on a standby ---- */

static void
set_cause(uint32 cause)
{
	pg_atomic_write_u32(&licdata_shared->replica_cause, cause);
}

static void
drop_conn(void)
{
	if (conn)
		PQfinish(conn);
	conn = NULL;
}

/* Wait for c's socket (or the latch: interrupts are served meanwhile). */
static void
wait_conn_socket(PGconn *c, int events)
{
	int			rc;

	rc = WaitLatchOrSocket(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH | events,
						   PQsocket(c), 1000L, PG_WAIT_EXTENSION);
	if (rc & WL_LATCH_SET)
		ResetLatch(MyLatch);
	CHECK_FOR_INTERRUPTS();
}

static void
wait_socket(int events)
{
	wait_conn_socket(conn, events);
}

static void
fail(uint32 cause, const char *what)
{
	char	   *msg = pstrdup(conn ? PQerrorMessage(conn) : "");

	drop_conn();
	set_cause(cause);
	ereport(ERROR,
			(errcode(ERRCODE_LD_METERING_FAILED),
			 errmsg("could not hand journal records to the primary: %s", what),
			 errdetail_log("%s", msg)));
}

/*
 * The flusher's pass ended with an error (the current one, in its
 * PG_CATCH): report it.  A failed hand-over is logged once when hand-over
 * starts failing, as a WARNING with its cause, and again only when the
 * cause changes; a repeat goes to DEBUG1; the success after it logs one
 * line (licdata_replica_hand_over).  Every other error is reported as it
 * is.  What backends see (the grace check) and licdata.nodes do not depend
 * on this.
 */
void
licdata_replica_report_error(void)
{
	MemoryContext old;
	ErrorData  *ed;
	uint32		cause;

	if (!in_hand_over)
	{
		EmitErrorReport();
		return;
	}
	in_hand_over = false;
	cause = pg_atomic_read_u32(&licdata_shared->replica_cause);
	old = MemoryContextSwitchTo(TopMemoryContext);
	ed = CopyErrorData();
	FlushErrorState();
	if (failures++ == 0)
		failing_since = GetCurrentTimestamp();
	if (failures == 1 || cause != failing_cause)
	{
		ed->elevel = WARNING;
		if (ed->hint == NULL)
			ed->hint = pstrdup("The records wait in this standby's journal. Further failures are logged at DEBUG1 until a hand-over succeeds.");
		failing_cause = cause;
	}
	else
		ed->elevel = DEBUG1;
	ThrowErrorData(ed);
	FreeErrorData(ed);
	MemoryContextSwitchTo(old);
}

/* The connection string to the primary: licdata.primary_conninfo, else primary_conninfo. */
static const char *
primary_ci(void)
{
	const char *ci = licdata_primary_conninfo;

	if (ci == NULL || ci[0] == '\0')
		ci = GetConfigOption("primary_conninfo", true, false);
	return ci;
}

/*
 * Start connecting with connection string ci (not empty): its parameters,
 * with licdata's home database unless it names one (a replication
 * conninfo names none, or "replication"), connect_timeout 'timeout_s'
 * unless it sets one, application_name 'app', and 'options' when given.
 * Returns NULL with *cause and *why set when it cannot start.
 */
static PGconn *
start_conn(const char *ci, int timeout_s, const char *app, const char *options,
		   uint32 *cause, char **why)
{
	PQconninfoOption *opts;
	PQconninfoOption *o;
	char	   *err = NULL;
	const char *kw[64];
	const char *val[64];
	int			n = 0;
	bool		has_db = false;
	bool		has_timeout = false;
	char	   *home = licdata_home_database();
	char		tmo[16];
	PGconn	   *c;

	if (home == NULL)
	{
		*cause = REPLICA_NO_DATABASE;
		*why = "licdata has no home database";
		return NULL;
	}
	opts = PQconninfoParse(ci, &err);
	if (opts == NULL)
	{
		*cause = REPLICA_NO_CONNINFO;
		*why = psprintf("invalid connection string: %s", err ? err : "out of memory");
		if (err)
			PQfreemem(err);
		return NULL;
	}
	for (o = opts; o->keyword != NULL && n < 56; o++)
	{
		if (o->val == NULL || o->val[0] == '\0')
			continue;
		if (strcmp(o->keyword, "dbname") == 0)
		{
			if (strcmp(o->val, "replication") == 0)
				continue;
			has_db = true;
		}
		if (strcmp(o->keyword, "replication") == 0 || strcmp(o->keyword, "application_name") == 0)
			continue;
		if (options && strcmp(o->keyword, "options") == 0)
		{
			/* the string's own options first, then ours */
			options = psprintf("%s %s", o->val, options);
			continue;
		}
		if (strcmp(o->keyword, "connect_timeout") == 0)
			has_timeout = true;
		kw[n] = o->keyword;
		val[n] = o->val;
		n++;
	}
	if (!has_db)
	{
		kw[n] = "dbname";
		val[n++] = home;
	}
	if (!has_timeout)
	{
		snprintf(tmo, sizeof(tmo), "%d", timeout_s);
		kw[n] = "connect_timeout";
		val[n++] = tmo;
	}
	if (options)
	{
		kw[n] = "options";
		val[n++] = options;
	}
	kw[n] = "application_name";
	val[n++] = app;
	kw[n] = NULL;
	val[n] = NULL;

	c = PQconnectStartParams(kw, val, 0);
	PQconninfoFree(opts);
	if (c == NULL)
	{
		*cause = REPLICA_CONNECT_FAILED;
		*why = "out of memory";
	}
	return c;
}

/*
 * Connect to the primary: the conninfo's parameters, with licdata's home
 * database unless it names one, short timeouts unless it sets its own.
 */
static void
connect_primary(void)
{
	const char *ci = primary_ci();
	TimestampTz deadline;
	uint32		cause = REPLICA_OK;
	char	   *why = NULL;

	/* a reload that changes the connection string takes effect now */
	if (conn && PQstatus(conn) == CONNECTION_OK && conn_ci && ci && strcmp(conn_ci, ci) == 0)
		return;
	drop_conn();
	if (conn_ci)
		pfree(conn_ci);
	conn_ci = ci ? MemoryContextStrdup(TopMemoryContext, ci) : NULL;
	if (ci == NULL || ci[0] == '\0')
	{
		set_cause(REPLICA_NO_CONNINFO);
		ereport(ERROR,
				(errcode(ERRCODE_LD_METERING_FAILED),
				 errmsg("could not hand journal records to the primary: no connection string"),
				 errhint("Set licdata.primary_conninfo or primary_conninfo.")));
	}
	conn = start_conn(ci, 5, "licdata standby", NULL, &cause, &why);
	if (conn == NULL)
	{
		set_cause(cause);
		if (cause == REPLICA_NO_DATABASE)
			elog(ERROR, "licdata has no home database");
		ereport(ERROR,
				(errcode(ERRCODE_LD_METERING_FAILED),
				 errmsg("could not hand journal records to the primary: %s",
						cause == REPLICA_NO_CONNINFO ? "invalid connection string" : "out of memory"),
				 errdetail_log("%s", why)));
	}
	deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), 10000);
	for (;;)
	{
		PostgresPollingStatusType st = PQconnectPoll(conn);

		if (st == PGRES_POLLING_OK)
			break;
		if (st == PGRES_POLLING_FAILED)
			fail(REPLICA_CONNECT_FAILED, "could not connect");
		if (GetCurrentTimestamp() > deadline)
			fail(REPLICA_CONNECT_FAILED, "connection timed out");
		wait_socket(st == PGRES_POLLING_READING ? WL_SOCKET_READABLE : WL_SOCKET_WRITEABLE);
	}
}

/*
 * For a backend (lease.c): a new connection to the primary, within
 * timeout_ms, committing with synchronous_commit = local (what it is
 * granted must be durable on the primary before it is used).  NULL when it
 * cannot connect: *cause says why (REPLICA_*) and *why in words, for the
 * server log.  Interrupts are served while waiting; the connection is not
 * leaked if one raises.
 */
PGconn *
licdata_replica_connect(const char *app, int timeout_ms, uint32 *cause, char **why)
{
	const char *ci = primary_ci();
	PGconn	   *volatile c;
	TimestampTz deadline;

	*cause = REPLICA_OK;
	*why = NULL;
	if (ci == NULL || ci[0] == '\0')
	{
		*cause = REPLICA_NO_CONNINFO;
		*why = "no connection string (licdata.primary_conninfo or primary_conninfo)";
		return NULL;
	}
	c = start_conn(ci, Max(2, timeout_ms / 1000), app, "-c synchronous_commit=local", cause, why);
	if (c == NULL)
		return NULL;
	deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), timeout_ms);
	PG_TRY();
	{
		for (;;)
		{
			PostgresPollingStatusType st = PQconnectPoll(c);

			if (st == PGRES_POLLING_OK)
				break;
			if (st == PGRES_POLLING_FAILED || GetCurrentTimestamp() > deadline)
			{
				*cause = REPLICA_CONNECT_FAILED;
				*why = pstrdup(st == PGRES_POLLING_FAILED ? PQerrorMessage(c) : "connection timed out");
				PQfinish(c);
				c = NULL;
				break;
			}
			wait_conn_socket(c, st == PGRES_POLLING_READING ? WL_SOCKET_READABLE : WL_SOCKET_WRITEABLE);
		}
	}
	PG_CATCH();
	{
		if (c)
			PQfinish(c);
		PG_RE_THROW();
	}
	PG_END_TRY();
	return c;
}

/*
 * Run one parameterised statement on c (text parameters), waiting at most
 * timeout_ms: the last result, or NULL when the connection broke or the
 * primary did not answer in time (*why says which).  The caller clears the
 * result.  On an interrupt the caller's PG_TRY must PQfinish(c).
 */
PGresult *
licdata_replica_exec(PGconn *c, const char *sql, int nparams, const char *const *values,
					 int timeout_ms, char **why)
{
	PGresult   *res;
	PGresult   *volatile last = NULL;
	TimestampTz deadline;

	*why = NULL;
	if (!PQsendQueryParams(c, sql, nparams, NULL, values, NULL, NULL, 0))
	{
		*why = pstrdup(PQerrorMessage(c));
		return NULL;
	}
	deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), timeout_ms);
	PG_TRY();
	{
		for (;;)
		{
			while (PQisBusy(c))
			{
				if (GetCurrentTimestamp() > deadline)
				{
					*why = "the primary did not answer in time";
					break;
				}
				wait_conn_socket(c, WL_SOCKET_READABLE);
				if (!PQconsumeInput(c))
				{
					*why = pstrdup(PQerrorMessage(c));
					break;
				}
			}
			if (*why)
				break;
			res = PQgetResult(c);
			if (res == NULL)
				break;
			if (last)
				PQclear(last);
			last = res;
		}
	}
	PG_CATCH();
	{
		if (last)
			PQclear(last);
		PG_RE_THROW();
	}
	PG_END_TRY();
	if (*why)
	{
		if (last)
			PQclear(last);
		return NULL;
	}
	return last;
}

/*
 * The flusher exits (the standby shuts down): every unused day-quota lease
 * goes back to the primary, on the connection it has (a new one when that
 * is busy or broken, 2 s at most), with interrupts held so that a second
 * signal cannot cut it short.
 */
static bool exit_registered = false;

static void
give_back_at_exit(int code, Datum arg)
{
	if (!RecoveryInProgress())
		return;
	HOLD_INTERRUPTS();
	PG_TRY();
	{
		/* a hand-over cut short leaves the connection busy: a new one */
		if (conn == NULL || PQstatus(conn) != CONNECTION_OK ||
			PQtransactionStatus(conn) != PQTRANS_IDLE)
		{
			uint32		cause;
			char	   *why;

			drop_conn();
			conn = licdata_replica_connect("licdata standby", 2000, &cause, &why);
		}
		if (conn)
			licdata_lease_give_back(conn, true);
	}
	PG_CATCH();
	{
		FlushErrorState();
	}
	PG_END_TRY();
	RESUME_INTERRUPTS();
}

/*
 * The last result of the query sent on conn, waiting at most until
 * 'deadline'; NULL when the connection broke or the time ran out (the
 * connection is then unusable: the caller drops it).
 */
static PGresult *
await_last_result(TimestampTz deadline, const char **why)
{
	PGresult   *res;
	PGresult   *last = NULL;

	for (;;)
	{
		while (PQisBusy(conn))
		{
			if (GetCurrentTimestamp() > deadline)
			{
				if (last)
					PQclear(last);
				*why = "the primary did not answer in time";
				return NULL;
			}
			wait_socket(WL_SOCKET_READABLE);
			if (!PQconsumeInput(conn))
			{
				if (last)
					PQclear(last);
				*why = "connection lost";
				return NULL;
			}
		}
		res = PQgetResult(conn);
		if (res == NULL)
			break;
		if (last)
			PQclear(last);
		last = res;
	}
	return last;
}

/*
 * Hand 'n' records to the primary in one call; returns when the primary
 * has committed them, with a position of the primary's WAL at or past that
 * commit.  Until this node has replayed the WAL to there, the records are
 * on the primary but not yet here: were this node promoted now, they would
 * be on the old timeline only, so the caller keeps them in its journal
 * until then (worker.c, write_tails).  Raises on any failure (the caller
 * keeps them).  'pending': records this node still holds after these.
 */
XLogRecPtr
licdata_replica_hand_over(const ReplicaRecord *recs, int n, int64 pending)
{
	StringInfoData buf;
	uint32		u32;
	const char *values[3];
	int			lengths[3];
	int			formats[3] = {0, 1, 0};
	char		pend[32];
	PGresult   *last = NULL;
	TimestampTz deadline;
	XLogRecPtr	lsn = InvalidXLogRecPtr;
	const char *why = NULL;

	in_hand_over = true;
	connect_primary();

	initStringInfo(&buf);
	appendBinaryStringInfo(&buf, RB_MAGIC, 4);
	u32 = RB_VERSION;
	appendBinaryStringInfo(&buf, (char *) &u32, 4);
	u32 = (uint32) n;
	appendBinaryStringInfo(&buf, (char *) &u32, 4);
	for (int i = 0; i < n; i++)
	{
		uint16		nl = (uint16) strlen(recs[i].file);
		uint8		dead = recs[i].dead ? 1 : 0;

		appendBinaryStringInfo(&buf, (char *) &nl, 2);
		appendBinaryStringInfo(&buf, recs[i].file, nl);
		appendBinaryStringInfo(&buf, (char *) &recs[i].off, 8);
		appendBinaryStringInfo(&buf, (char *) &dead, 1);
		appendBinaryStringInfo(&buf, (char *) &recs[i].use_size, 4);
		appendBinaryStringInfo(&buf, (char *) &recs[i].r->length, 4);
		appendBinaryStringInfo(&buf, (const char *) recs[i].r, recs[i].r->length);
	}
	snprintf(pend, sizeof(pend), INT64_FORMAT, pending);
	values[0] = licdata_node_name();
	lengths[0] = 0;
	values[1] = buf.data;
	lengths[1] = buf.len;
	values[2] = pend;
	lengths[2] = 0;

	if (!PQsendQueryParams(conn,
						   "SELECT licdata_internal._receive_records($1::pg_catalog.text, $2::pg_catalog.bytea, $3::pg_catalog.int8)",
						   3, NULL, values, lengths, formats, 0))
		fail(REPLICA_CONNECT_FAILED, "could not send");
	pfree(buf.data);
	deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), HAND_OVER_TIMEOUT_MS);
	last = await_last_result(deadline, &why);
	if (last == NULL && why != NULL)
		fail(REPLICA_CONNECT_FAILED, why);
	if (last == NULL || PQresultStatus(last) != PGRES_TUPLES_OK)
	{
		bool		broken = PQstatus(conn) != CONNECTION_OK;
		char	   *msg = pstrdup(last ? PQresultErrorMessage(last) : PQerrorMessage(conn));

		if (last)
			PQclear(last);
		drop_conn();
		set_cause(broken ? REPLICA_CONNECT_FAILED : REPLICA_REFUSED);
		ereport(ERROR,
				(errcode(ERRCODE_LD_METERING_FAILED),
				 errmsg("could not hand journal records to the primary: %s",
						broken ? "connection lost" : "the primary refused them"),
				 errdetail_log("%s", msg)));
	}
	PQclear(last);

	/* where the primary's WAL is now: past the commit of the call */
	if (n > 0)
	{
		uint32		hi;
		uint32		lo;

		if (!PQsendQuery(conn, "SELECT pg_catalog.pg_current_wal_insert_lsn()::pg_catalog.text"))
			fail(REPLICA_CONNECT_FAILED, "could not send");
		last = await_last_result(deadline, &why);
		if (last == NULL)
			fail(REPLICA_CONNECT_FAILED, why ? why : "no answer");
		if (PQresultStatus(last) != PGRES_TUPLES_OK || PQntuples(last) != 1 ||
			sscanf(PQgetvalue(last, 0, 0), "%X/%X", &hi, &lo) != 2)
		{
			PQclear(last);
			fail(REPLICA_CONNECT_FAILED, "could not read the primary's WAL position");
		}
		lsn = ((uint64) hi << 32) | lo;
		PQclear(last);
	}
	in_hand_over = false;
	pg_atomic_write_u64(&licdata_shared->replica_ok_at, (uint64) GetCurrentTimestamp());
	set_cause(REPLICA_OK);
	if (failures > 0)
	{
		long		secs;
		int			usecs;

		TimestampDifference(failing_since, GetCurrentTimestamp(), &secs, &usecs);
		ereport(LOG,
				(errmsg("licdata hands journal records to the primary again"),
				 errdetail("Hand-over had failed %lld times over %ld s.",
						   (long long) failures, secs)));
		failures = 0;
		failing_cause = REPLICA_OK;
	}
	/* idle day-quota leases go back to the primary (lease.c) */
	if (!exit_registered)
	{
		before_shmem_exit(give_back_at_exit, (Datum) 0);
		exit_registered = true;
	}
	if (!licdata_lease_give_back(conn, false))
		drop_conn();
	return lsn;
}

/* ---- the primary: receiving ---- */

static void
bad_input(const char *why)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
			 errmsg("invalid records from a standby"),
			 errdetail("%s", why)));
}

static bool
valid_file_name(const char *s, int len)
{
	if (len < 5 || len >= 64 || strncmp(s + len - 4, ".jnl", 4) != 0)
		return false;
	for (int i = 0; i < len - 4; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f') || s[i] == '-'))
			return false;
	return true;
}

/*
 * The primary's flusher is woken when the transaction that stored a
 * standby's records commits, not before: woken earlier, it would read the
 * inbox before the rows are visible and sleep a whole flush_interval.
 */
static bool wake_at_commit = false;
static bool xact_cb_registered = false;

static void
receive_xact_cb(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
			if (wake_at_commit)
				licdata_worker_wake();
			wake_at_commit = false;
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
			wake_at_commit = false;
			break;
		default:
			break;
	}
}

PG_FUNCTION_INFO_V1(licdata_receive_records);

/*
 * licdata_internal._receive_records(node text, records bytea, pending bigint)
 * RETURNS bigint: the records newly accepted.  Idempotent: a record whose
 * reference is in the inbox or in audit_log already is skipped.
 */
Datum
licdata_receive_records(PG_FUNCTION_ARGS)
{
	text	   *node_t;
	bytea	   *in;
	int64		pending;
	char	   *node;
	const char *p;
	const char *end;
	uint32		version;
	uint32		count;
	ArrayBuildState *a_ref;
	ArrayBuildState *a_dead;
	ArrayBuildState *a_use;
	ArrayBuildState *a_rec;
	Datum		args[5];
	Oid			types[5] = {TEXTOID, TEXTARRAYOID, BOOLARRAYOID, INT4ARRAYOID, BYTEAARRAYOID};
	int			rc;
	int64		accepted;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2))
		bad_input("An argument is null.");
	if (RecoveryInProgress())
		ereport(ERROR,
				(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
				 errmsg("cannot receive records on a standby"),
				 errhint("Point licdata.primary_conninfo at the primary: cascading standbys are not supported.")));
	node_t = PG_GETARG_TEXT_PP(0);
	in = PG_GETARG_BYTEA_PP(1);
	pending = PG_GETARG_INT64(2);
	node = text_to_cstring(node_t);
	if (node[0] == '\0' || strlen(node) >= NAMEDATALEN)
		bad_input("The node name must have 1 to 63 bytes.");
	p = VARDATA_ANY(in);
	end = p + VARSIZE_ANY_EXHDR(in);
	if (end - p < 12 || memcmp(p, RB_MAGIC, 4) != 0)
		bad_input("The records do not start with the expected header.");
	memcpy(&version, p + 4, 4);
	memcpy(&count, p + 8, 4);
	if (version != RB_VERSION)
		bad_input("The standby runs another licdata version.");
	p += 12;
	a_ref = initArrayResult(TEXTOID, CurrentMemoryContext, false);
	a_dead = initArrayResult(BOOLOID, CurrentMemoryContext, false);
	a_use = initArrayResult(INT4OID, CurrentMemoryContext, false);
	a_rec = initArrayResult(BYTEAOID, CurrentMemoryContext, false);
	for (uint32 i = 0; i < count; i++)
	{
		uint16		nl;
		char		name[64];
		uint64		off;
		uint8		dead;
		uint32		use_size;
		uint32		len;
		bytea	   *raw;

		if (end - p < 2)
			bad_input("A record is cut short.");
		memcpy(&nl, p, 2);
		p += 2;
		if (end - p < nl + 8 + 1 + 4 + 4 || !valid_file_name(p, nl))
			bad_input("A record's journal file name is not valid.");
		memcpy(name, p, nl);
		name[nl] = '\0';
		p += nl;
		memcpy(&off, p, 8);
		memcpy(&dead, p + 8, 1);
		memcpy(&use_size, p + 9, 4);
		memcpy(&len, p + 13, 4);
		p += 17;
		if (len < offsetof(JournalRecord, statement) || len > (uint32) (end - p) ||
			(use_size != sizeof(JournalUse) && use_size != JOURNAL_USE_V4_SIZE))
			bad_input("A record's length or layout is not valid.");
		raw = palloc(VARHDRSZ + len);
		memcpy(VARDATA(raw), p, len);
		SET_VARSIZE(raw, VARHDRSZ + len);
		/* VARDATA is only 4-byte aligned: the header is read from a copy */
		{
			JournalRecord hdr;

			memcpy(&hdr, VARDATA(raw), offsetof(JournalRecord, statement));
			if (hdr.magic != JR_MAGIC || hdr.length != len)
				bad_input("A record's header is not valid.");
		}
		p += len;
		accumArrayResult(a_ref, CStringGetTextDatum(psprintf("%s@%llu", name, (unsigned long long) off)),
						 false, TEXTOID, CurrentMemoryContext);
		accumArrayResult(a_dead, BoolGetDatum(dead != 0), false, BOOLOID, CurrentMemoryContext);
		accumArrayResult(a_use, Int32GetDatum((int32) use_size), false, INT4OID, CurrentMemoryContext);
		accumArrayResult(a_rec, PointerGetDatum(raw), false, BYTEAOID, CurrentMemoryContext);
	}
	if (p != end)
		bad_input("There are bytes after the last record.");

	args[0] = CStringGetTextDatum(node);
	args[1] = makeArrayResult(a_ref, CurrentMemoryContext);
	args[2] = makeArrayResult(a_dead, CurrentMemoryContext);
	args[3] = makeArrayResult(a_use, CurrentMemoryContext);
	args[4] = makeArrayResult(a_rec, CurrentMemoryContext);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "could not connect to SPI");
	accepted = 0;
	if (count > 0)
	{
		rc = SPI_execute_with_args("INSERT INTO licdata.replica_inbox (journal_ref, node, dead, use_size, record) "
								   "SELECT u.ref, $1, u.dead, u.use_size, u.rec "
								   "FROM ROWS FROM (pg_catalog.unnest($2), pg_catalog.unnest($3), "
								   "pg_catalog.unnest($4), pg_catalog.unnest($5)) AS u(ref, dead, use_size, rec) "
								   "WHERE u.ref OPERATOR(pg_catalog.<>) ALL "
								   "(ARRAY(SELECT m.ref FROM licdata_internal._moved($2) m(ref))) "
								   "ON CONFLICT (journal_ref) DO NOTHING",
								   5, types, args, NULL, false, 0);
		if (rc != SPI_OK_INSERT)
			elog(ERROR, "could not store records from a standby: %s", SPI_result_code_string(rc));
		accepted = (int64) SPI_processed;
	}
	{
		Oid			nt[4] = {TEXTOID, INT8OID, INT8OID, INT8OID};
		Datum		na[4];

		na[0] = args[0];
		na[1] = Int64GetDatum(Max(pending, 0));
		na[2] = Int64GetDatum(accepted);
		na[3] = Int64GetDatum((int64) count);
		rc = SPI_execute_with_args("INSERT INTO licdata.replica_nodes AS n "
								   "(node, first_contact, last_contact, records_pending, records_handed_over, batches) "
								   "VALUES ($1, pg_catalog.now(), pg_catalog.now(), $2 OPERATOR(pg_catalog.+) $4, $3, 1) "
								   "ON CONFLICT (node) DO UPDATE SET last_contact = pg_catalog.now(), "
								   "records_pending = $2 OPERATOR(pg_catalog.+) $4, "
								   "records_handed_over = n.records_handed_over OPERATOR(pg_catalog.+) $3, "
								   "batches = n.batches OPERATOR(pg_catalog.+) 1",
								   4, nt, na, NULL, false, 0);
		if (rc != SPI_OK_INSERT)
			elog(ERROR, "could not update licdata.replica_nodes: %s", SPI_result_code_string(rc));
	}
	SPI_finish();
	if (accepted > 0)
	{
		if (!xact_cb_registered)
		{
			RegisterXactCallback(receive_xact_cb, NULL);
			xact_cb_registered = true;
		}
		wake_at_commit = true;
	}
	PG_RETURN_INT64(accepted);
}

/* ---- the primary's flusher: moving the inbox ---- */

typedef struct InboxRec
{
	char	   *ref;
	char	   *node;
	bool		dead;
	uint32		use_size;
	JournalRecord *r;
} InboxRec;

/*
 * Move the records standbys handed over: read a batch from the inbox, queue
 * each for the flusher, send the batch (which deletes them from the inbox
 * in its transaction), until the inbox is empty.  Runs outside a
 * transaction; memory in the caller's context.
 */
void
licdata_replica_drain(ReplicaQueueFn queue, ReplicaSendFn send)
{
	for (;;)
	{
		InboxRec   *recs;
		int			n = 0;
		MemoryContext cxt = CurrentMemoryContext;

		SetCurrentStatementStartTimestamp();
		StartTransactionCommand();
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "could not connect to SPI");
		PushActiveSnapshot(GetTransactionSnapshot());
		if (SPI_execute("SELECT i.journal_ref, i.node, i.dead, i.use_size, i.record "
						"FROM licdata.replica_inbox i ORDER BY i.id LIMIT " CppAsString2(INBOX_BATCH),
						true, 0) != SPI_OK_SELECT)
			elog(ERROR, "could not read licdata.replica_inbox");
		recs = MemoryContextAlloc(cxt, sizeof(InboxRec) * Max(SPI_processed, 1));
		for (uint64 k = 0; k < SPI_processed; k++)
		{
			HeapTuple	t = SPI_tuptable->vals[k];
			TupleDesc	d = SPI_tuptable->tupdesc;
			bool		isnull;
			bytea	   *raw;
			InboxRec   *ir = &recs[n];
			MemoryContext old = MemoryContextSwitchTo(cxt);

			ir->ref = SPI_getvalue(t, d, 1);
			ir->node = SPI_getvalue(t, d, 2);
			ir->dead = DatumGetBool(SPI_getbinval(t, d, 3, &isnull));
			ir->use_size = (uint32) DatumGetInt32(SPI_getbinval(t, d, 4, &isnull));
			raw = DatumGetByteaPP(SPI_getbinval(t, d, 5, &isnull));
			/* a MAXALIGNed copy: VARDATA is only 4-byte aligned */
			ir->r = (JournalRecord *) palloc(Max(VARSIZE_ANY_EXHDR(raw),
												 offsetof(JournalRecord, statement)));
			memcpy(ir->r, VARDATA_ANY(raw), VARSIZE_ANY_EXHDR(raw));
			MemoryContextSwitchTo(old);
			/* framing was checked on receipt; the flusher checks the rest */
			if (VARSIZE_ANY_EXHDR(raw) < offsetof(JournalRecord, statement) ||
				ir->r->length != VARSIZE_ANY_EXHDR(raw))
				continue;
			n++;
		}
		SPI_finish();
		PopActiveSnapshot();
		CommitTransactionCommand();
		MemoryContextSwitchTo(cxt);
		if (n == 0)
			return;
		for (int i = 0; i < n; i++)
			queue(recs[i].ref, recs[i].node, recs[i].r, recs[i].dead, recs[i].use_size);
		send();
		if (n < INBOX_BATCH)
			return;
	}
}

/* In the flusher's transaction: the moved records leave the inbox. */
void
licdata_replica_inbox_delete(Datum refs)
{
	Oid			t[1] = {TEXTARRAYOID};
	int			rc;

	rc = SPI_execute_with_args("DELETE FROM licdata.replica_inbox i "
							   "WHERE i.journal_ref OPERATOR(pg_catalog.=) ANY ($1)",
							   1, t, &refs, NULL, false, 0);
	if (rc != SPI_OK_DELETE)
		elog(ERROR, "could not delete from licdata.replica_inbox: %s", SPI_result_code_string(rc));
}
