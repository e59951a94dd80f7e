/*
 * test/clients/odbc_test.c -- licdata through ODBC (unixODBC driver manager +
 * psqlODBC), run by test/clients/odbc_test.sh against a cluster loaded with
 * test/clients/fixture.sql.
 *
 *   odbc_test LICENSEE
 *
 * Uses the DSNs that odbc_test.sh writes (ODBCSYSINI / ODBCINI point at them):
 *   licdata_bank       the licensee, purpose and consent reference as startup
 *                      options (Pqopt), UseDeclareFetch=1 Fetch=100: SELECTs run
 *                      through server-side cursors, 100 rows a FETCH
 *   licdata_plain      the same without UseDeclareFetch (whole result at once)
 *   licdata_settings   the licensee, purpose and consent reference sent as SQL
 *                      after connecting (ConnSettings)
 *   licdata_nopurpose  the licensee with no purpose
 *   licdata_super      the superuser (expected values, usage and audit rows)
 *
 * The ODBC declarations are written out below (the ODBC 3 ABI of unixODBC on
 * LP64 Linux), so the test needs only the runtime library libodbc.so.2 and not
 * the unixodbc-dev headers.  Prints one PASS or FAIL line per check; exits 0
 * when every check passed, 1 otherwise.
 */
#include <locale.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- ODBC 3 declarations (sql.h / sqlext.h of unixODBC, 64-bit) ---- */
typedef signed short SQLSMALLINT;
typedef unsigned short SQLUSMALLINT;
typedef int SQLINTEGER;
typedef long SQLLEN;
typedef unsigned long SQLULEN;
typedef SQLSMALLINT SQLRETURN;
typedef unsigned char SQLCHAR;
typedef void *SQLPOINTER;
typedef void *SQLHANDLE;
typedef SQLHANDLE SQLHENV, SQLHDBC, SQLHSTMT;
typedef void *SQLHWND;

#define SQL_HANDLE_ENV 1
#define SQL_HANDLE_DBC 2
#define SQL_HANDLE_STMT 3
#define SQL_NULL_HANDLE 0
#define SQL_SUCCESS 0
#define SQL_SUCCESS_WITH_INFO 1
#define SQL_NO_DATA 100
#define SQL_NTS (-3)
#define SQL_NULL_DATA (-1)
#define SQL_ATTR_ODBC_VERSION 200
#define SQL_OV_ODBC3 3UL
#define SQL_DRIVER_NOPROMPT 0
#define SQL_PARAM_INPUT 1
#define SQL_C_CHAR 1
#define SQL_VARCHAR 12
#define SQL_ATTR_ROW_BIND_TYPE 5
#define SQL_BIND_BY_COLUMN 0UL
#define SQL_ATTR_ROW_STATUS_PTR 25
#define SQL_ATTR_ROWS_FETCHED_PTR 26
#define SQL_ATTR_ROW_ARRAY_SIZE 27
#define SQL_ATTR_AUTOCOMMIT 102
#define SQL_AUTOCOMMIT_OFF 0UL
#define SQL_AUTOCOMMIT_ON 1UL
#define SQL_COMMIT 0
#define SQL_ROLLBACK 1
#define SQL_CLOSE 0
#define SQL_DESC_TYPE_NAME 14
#define SQL_SUCCEEDED(rc) (((rc) & (~1)) == 0)

SQLRETURN SQLAllocHandle(SQLSMALLINT, SQLHANDLE, SQLHANDLE *);
SQLRETURN SQLFreeHandle(SQLSMALLINT, SQLHANDLE);
SQLRETURN SQLSetEnvAttr(SQLHENV, SQLINTEGER, SQLPOINTER, SQLINTEGER);
SQLRETURN SQLSetConnectAttr(SQLHDBC, SQLINTEGER, SQLPOINTER, SQLINTEGER);
SQLRETURN SQLSetStmtAttr(SQLHSTMT, SQLINTEGER, SQLPOINTER, SQLINTEGER);
SQLRETURN SQLDriverConnect(SQLHDBC, SQLHWND, SQLCHAR *, SQLSMALLINT, SQLCHAR *, SQLSMALLINT,
						   SQLSMALLINT *, SQLUSMALLINT);
SQLRETURN SQLDisconnect(SQLHDBC);
SQLRETURN SQLExecDirect(SQLHSTMT, SQLCHAR *, SQLINTEGER);
SQLRETURN SQLPrepare(SQLHSTMT, SQLCHAR *, SQLINTEGER);
SQLRETURN SQLExecute(SQLHSTMT);
SQLRETURN SQLBindParameter(SQLHSTMT, SQLUSMALLINT, SQLSMALLINT, SQLSMALLINT, SQLSMALLINT, SQLULEN,
						   SQLSMALLINT, SQLPOINTER, SQLLEN, SQLLEN *);
SQLRETURN SQLBindCol(SQLHSTMT, SQLUSMALLINT, SQLSMALLINT, SQLPOINTER, SQLLEN, SQLLEN *);
SQLRETURN SQLFetch(SQLHSTMT);
SQLRETURN SQLGetData(SQLHSTMT, SQLUSMALLINT, SQLSMALLINT, SQLPOINTER, SQLLEN, SQLLEN *);
SQLRETURN SQLNumResultCols(SQLHSTMT, SQLSMALLINT *);
SQLRETURN SQLDescribeCol(SQLHSTMT, SQLUSMALLINT, SQLCHAR *, SQLSMALLINT, SQLSMALLINT *,
						 SQLSMALLINT *, SQLULEN *, SQLSMALLINT *, SQLSMALLINT *);
SQLRETURN SQLColAttribute(SQLHSTMT, SQLUSMALLINT, SQLUSMALLINT, SQLPOINTER, SQLSMALLINT,
						  SQLSMALLINT *, SQLLEN *);
SQLRETURN SQLColumns(SQLHSTMT, SQLCHAR *, SQLSMALLINT, SQLCHAR *, SQLSMALLINT, SQLCHAR *,
					 SQLSMALLINT, SQLCHAR *, SQLSMALLINT);
SQLRETURN SQLTables(SQLHSTMT, SQLCHAR *, SQLSMALLINT, SQLCHAR *, SQLSMALLINT, SQLCHAR *,
					SQLSMALLINT, SQLCHAR *, SQLSMALLINT);
SQLRETURN SQLCloseCursor(SQLHSTMT);
SQLRETURN SQLFreeStmt(SQLHSTMT, SQLUSMALLINT);
SQLRETURN SQLEndTran(SQLSMALLINT, SQLHANDLE, SQLSMALLINT);
SQLRETURN SQLGetDiagRec(SQLSMALLINT, SQLHANDLE, SQLSMALLINT, SQLCHAR *, SQLINTEGER *, SQLCHAR *,
						SQLSMALLINT, SQLSMALLINT *);

/* ---- checks ---- */
static int npass, nfail;
static const char *licensee;
static SQLHENV env;

#define PURPOSE "credit_assessment"
#define CONSENT "APP-2"
#define NLICENSED 5
static const char *const licensed[NLICENSED] = {"person_id", "id_number", "name", "region", "birth"};

static void
check(int ok, const char *fmt, ...)
{
	va_list		ap;

	printf("%s: ", ok ? "PASS" : "FAIL");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
	if (ok)
		npass++;
	else
		nfail++;
}

static void
check_eq_str(const char *what, const char *want, const char *got)
{
	int			ok = want && got && strcmp(want, got) == 0;

	if (ok)
		check(1, "%s", what);
	else
		check(0, "%s -- expected <%s>, got <%s>", what, want ? want : "(null)", got ? got : "(null)");
}

static void
check_eq_long(const char *what, long want, long got)
{
	if (want == got)
		check(1, "%s", what);
	else
		check(0, "%s -- expected <%ld>, got <%ld>", what, want, got);
}

/* The first diagnostic record of a handle: SQLSTATE into state, text into msg. */
static void
diag(SQLSMALLINT type, SQLHANDLE h, char state[6], char *msg, size_t msglen)
{
	SQLINTEGER	native;
	SQLSMALLINT len;

	state[0] = '\0';
	if (msg && msglen)
		msg[0] = '\0';
	if (!SQL_SUCCEEDED(SQLGetDiagRec(type, h, 1, (SQLCHAR *) state, &native, (SQLCHAR *) msg,
									 (SQLSMALLINT) msglen, &len)))
		strcpy(state, "?????");
}

static void
die(const char *what, SQLSMALLINT type, SQLHANDLE h)
{
	char		state[6], msg[1024];

	diag(type, h, state, msg, sizeof msg);
	printf("FAIL: %s -- [%s] %s\n", what, state, msg);
	printf("odbc: %d passed, %d failed (stopped early)\n", npass, nfail + 1);
	exit(1);
}

static SQLHDBC
connect_dsn(const char *dsn)
{
	SQLHDBC		dbc;
	char		cs[256];
	SQLCHAR		out[1024];
	SQLSMALLINT outlen;

	snprintf(cs, sizeof cs, "DSN=%s;", dsn);
	if (!SQL_SUCCEEDED(SQLAllocHandle(SQL_HANDLE_DBC, env, &dbc)))
		die("SQLAllocHandle(DBC)", SQL_HANDLE_ENV, env);
	if (!SQL_SUCCEEDED(SQLDriverConnect(dbc, NULL, (SQLCHAR *) cs, SQL_NTS, out, sizeof out, &outlen,
										SQL_DRIVER_NOPROMPT)))
	{
		char		what[300];

		snprintf(what, sizeof what, "connect %s", cs);
		die(what, SQL_HANDLE_DBC, dbc);
	}
	return dbc;
}

static void
disconnect(SQLHDBC dbc)
{
	SQLDisconnect(dbc);
	SQLFreeHandle(SQL_HANDLE_DBC, dbc);
}

static SQLHSTMT
new_stmt(SQLHDBC dbc)
{
	SQLHSTMT	st;

	if (!SQL_SUCCEEDED(SQLAllocHandle(SQL_HANDLE_STMT, dbc, &st)))
		die("SQLAllocHandle(STMT)", SQL_HANDLE_DBC, dbc);
	return st;
}

/* Runs sql, fetches every row; returns the row count, or -1 with the SQLSTATE. */
static long
run_all(SQLHDBC dbc, const char *sql, char state[6], char *msg, size_t msglen)
{
	SQLHSTMT	st = new_stmt(dbc);
	SQLRETURN	rc;
	SQLSMALLINT ncols = 0;
	long		n = 0;

	state[0] = '\0';
	rc = SQLExecDirect(st, (SQLCHAR *) sql, SQL_NTS);
	if (!SQL_SUCCEEDED(rc) && rc != SQL_NO_DATA)
	{
		diag(SQL_HANDLE_STMT, st, state, msg, msglen);
		SQLFreeHandle(SQL_HANDLE_STMT, st);
		return -1;
	}
	SQLNumResultCols(st, &ncols);
	if (ncols > 0)
	{
		while ((rc = SQLFetch(st)) != SQL_NO_DATA)
		{
			if (!SQL_SUCCEEDED(rc))
			{
				diag(SQL_HANDLE_STMT, st, state, msg, msglen);
				SQLFreeHandle(SQL_HANDLE_STMT, st);
				return -1;
			}
			n++;
		}
	}
	SQLFreeHandle(SQL_HANDLE_STMT, st);
	return n;
}

static void
exec_ok(SQLHDBC dbc, const char *sql)
{
	char		state[6], msg[1024];

	if (run_all(dbc, sql, state, msg, sizeof msg) < 0)
		check(0, "%s -- [%s] %s", sql, state, msg);
}

/* The first column of the first row as a string (static buffer); NULL on error. */
static const char *
scalar(SQLHDBC dbc, const char *sql)
{
	static char buf[4096];
	SQLHSTMT	st = new_stmt(dbc);
	SQLLEN		ind;
	const char *res = NULL;
	char		state[6], msg[1024];

	if (SQL_SUCCEEDED(SQLExecDirect(st, (SQLCHAR *) sql, SQL_NTS)) && SQL_SUCCEEDED(SQLFetch(st)) &&
		SQL_SUCCEEDED(SQLGetData(st, 1, SQL_C_CHAR, buf, sizeof buf, &ind)))
		res = ind == SQL_NULL_DATA ? "(null)" : buf;
	else
	{
		diag(SQL_HANDLE_STMT, st, state, msg, sizeof msg);
		printf("   (query failed: %s -- [%s] %s)\n", sql, state, msg);
	}
	SQLFreeHandle(SQL_HANDLE_STMT, st);
	return res;
}

static long
scalar_long(SQLHDBC dbc, const char *sql)
{
	const char *s = scalar(dbc, sql);

	return s ? atol(s) : -999;
}

/* sql must fail with SQLSTATE want (at execution or while fetching). */
static void
expect_state(SQLHDBC dbc, const char *what, const char *want, const char *sql, char *msgout, size_t msglen)
{
	char		state[6], msg[1024];
	long		n = run_all(dbc, sql, state, msg, sizeof msg);

	if (n >= 0)
		check(0, "%s -> %s -- no error, %ld rows", what, want, n);
	else if (strcmp(state, want) == 0)
		check(1, "%s -> %s", what, want);
	else
		check(0, "%s -> %s -- got [%s] %s", what, want, state, msg);
	if (msgout)
		snprintf(msgout, msglen, "%s", msg);
}

/* Like expect_state, for an already prepared statement. */
static void
expect_state_prepared(SQLHSTMT st, const char *what, const char *want)
{
	char		state[6], msg[1024];
	SQLRETURN	rc = SQLExecute(st);

	if (SQL_SUCCEEDED(rc))
		while (SQL_SUCCEEDED(rc = SQLFetch(st)))
			;
	if (rc == SQL_NO_DATA)
		check(0, "%s -> %s -- no error", what, want);
	else
	{
		diag(SQL_HANDLE_STMT, st, state, msg, sizeof msg);
		if (strcmp(state, want) == 0)
			check(1, "%s -> %s", what, want);
		else
			check(0, "%s -> %s -- got [%s] %s", what, want, state, msg);
	}
	SQLFreeStmt(st, SQL_CLOSE);
}

static void
get_str(SQLHSTMT st, int col, char *buf, size_t len)
{
	SQLLEN		ind;

	if (!SQL_SUCCEEDED(SQLGetData(st, (SQLUSMALLINT) col, SQL_C_CHAR, buf, (SQLLEN) len, &ind)))
		snprintf(buf, len, "(error)");
	else if (ind == SQL_NULL_DATA)
		snprintf(buf, len, "(null)");
}

/* ---- what the licensee should see of a person, read by the superuser ---- */
typedef struct
{
	long		id;
	char		raw_id[32], token[32], name[64], region[8], birth[16];
} Person;

#define NPEOPLE 11
static const long people_ids[NPEOPLE] = {1, 2, 4, 5, 6, 8, 9, 10, 12, 13, 3};	/* the last: region xj */
static Person people[NPEOPLE];

static void
load_people(SQLHDBC su)
{
	SQLHSTMT	st = new_stmt(su);
	char		sql[512], buf[32];
	int			i;

	for (i = 0; i < NPEOPLE; i++)
	{
		Person	   *p = &people[i];

		snprintf(sql, sizeof sql,
				 "SELECT person_id, id_number, licdata.mask_pseudonym(id_number, 16, '%s'), "
				 "licdata_internal.mask_cn_name(name), region, date_trunc('month', birth)::date::text "
				 "FROM pd.people WHERE person_id = %ld", licensee, people_ids[i]);
		if (!SQL_SUCCEEDED(SQLExecDirect(st, (SQLCHAR *) sql, SQL_NTS)) || !SQL_SUCCEEDED(SQLFetch(st)))
			die("read the expected people", SQL_HANDLE_STMT, st);
		get_str(st, 1, buf, sizeof buf);
		p->id = atol(buf);
		get_str(st, 2, p->raw_id, sizeof p->raw_id);
		get_str(st, 3, p->token, sizeof p->token);
		get_str(st, 4, p->name, sizeof p->name);
		get_str(st, 5, p->region, sizeof p->region);
		get_str(st, 6, p->birth, sizeof p->birth);
		SQLFreeStmt(st, SQL_CLOSE);
	}
	SQLFreeHandle(SQL_HANDLE_STMT, st);
}

/* Executes the prepared lookup with p's raw id number; returns rows, or -1 on error. */
static long
run_lookup(SQLHSTMT st, char *param, SQLLEN *param_len, const Person *p, char *problems, size_t plen)
{
	char		buf[5][128];
	long		n = 0;
	SQLRETURN	rc;
	int			c;

	problems[0] = '\0';
	snprintf(param, 32, "%s", p->raw_id);
	*param_len = SQL_NTS;
	if (!SQL_SUCCEEDED(SQLExecute(st)))
	{
		char		state[6], msg[512];

		diag(SQL_HANDLE_STMT, st, state, msg, sizeof msg);
		snprintf(problems, plen, "error [%s] %s", state, msg);
		return -1;
	}
	while (SQL_SUCCEEDED(rc = SQLFetch(st)))
	{
		n++;
		for (c = 0; c < 5; c++)
			get_str(st, c + 1, buf[c], sizeof buf[c]);
		if (atol(buf[0]) != p->id)
			snprintf(problems + strlen(problems), plen - strlen(problems), "person_id %s; ", buf[0]);
		if (strcmp(buf[1], p->token) != 0 || strlen(buf[1]) != 16 || strcmp(buf[1], p->raw_id) == 0)
			snprintf(problems + strlen(problems), plen - strlen(problems),
					 "id_number %s (want %s); ", buf[1], p->token);
		if (strcmp(buf[2], p->name) != 0)
			snprintf(problems + strlen(problems), plen - strlen(problems), "name %s (want %s); ",
					 buf[2], p->name);
		if (strcmp(buf[3], p->region) != 0)
			snprintf(problems + strlen(problems), plen - strlen(problems), "region %s; ", buf[3]);
		if (strcmp(buf[4], p->birth) != 0)
			snprintf(problems + strlen(problems), plen - strlen(problems), "birth %s (want %s); ",
					 buf[4], p->birth);
	}
	if (rc != SQL_NO_DATA)
	{
		char		state[6], msg[512];

		diag(SQL_HANDLE_STMT, st, state, msg, sizeof msg);
		snprintf(problems + strlen(problems), plen - strlen(problems), "fetch error [%s] %s", state, msg);
		n = -1;
	}
	SQLFreeStmt(st, SQL_CLOSE);
	return n;
}

#define DESCRIBE_SQL \
	"SELECT /* odbc-describe */ person_id, id_number, name, region, birth FROM pd.people " \
	"WHERE id_number = licdata.token('pd.people', 'id_number', ?)"

/*
 * SQLPrepare a lookup by licdata.token once, SQLExecute it 10 times, then
 * change purpose and consent reference under it.  marker tags its statement.
 */
static void
lookup_group(SQLHDBC dbc, const char *label, const char *marker, int expect_named)
{
	SQLHSTMT	st = new_stmt(dbc);
	char		param[32] = "", problems[2048], sql[512], named_sql[512];
	SQLLEN		param_len = SQL_NTS;
	long		n;
	int			i;

	printf("-- prepared lookup by licdata.token, SQLPrepare once, SQLExecute 10 times (%s)\n", label);
	snprintf(sql, sizeof sql,
			 "SELECT /* %s */ person_id, id_number, name, region, birth FROM pd.people "
			 "WHERE id_number = licdata.token('pd.people', 'id_number', ?)", marker);
	snprintf(named_sql, sizeof named_sql,
			 "SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE '%%%s%%' "
			 "AND statement NOT LIKE '%%pg_prepared_statements%%' AND NOT from_sql", marker);
	if (!SQL_SUCCEEDED(SQLPrepare(st, (SQLCHAR *) sql, SQL_NTS)))
		die("SQLPrepare lookup", SQL_HANDLE_STMT, st);
	if (!SQL_SUCCEEDED(SQLBindParameter(st, 1, SQL_PARAM_INPUT, SQL_C_CHAR, SQL_VARCHAR, 18, 0,
										param, sizeof param, &param_len)))
		die("SQLBindParameter", SQL_HANDLE_STMT, st);
	for (i = 0; i < 10; i++)
	{
		n = run_lookup(st, param, &param_len, &people[i], problems, sizeof problems);
		check(n == 1 && problems[0] == '\0',
			  "execution %d (person %ld): one row, masked id_number/name/birth%s%s%s", i + 1,
			  people[i].id, n != 1 || problems[0] ? " -- " : "", n != 1 ? "row count wrong; " : "",
			  problems);
	}
	n = scalar_long(dbc, named_sql);
	if (expect_named)
		check(n >= 1, "psqlODBC executed the lookup as a named server-side prepared statement (%ld)", n);
	else
		printf("   (named server-side prepared statements of the lookup: %ld; psqlODBC sends the "
			   "parameter inline inside DECLARE ... CURSOR)\n", n);
	n = run_lookup(st, param, &param_len, &people[10], problems, sizeof problems);
	check_eq_long("the row filter holds: a person in region xj is not found", 0, n);

	snprintf(param, sizeof param, "%s", people[0].raw_id);
	exec_ok(dbc, "SET licdata.purpose = 'marketing'");
	expect_state_prepared(st, "prepared lookup after SET licdata.purpose = 'marketing'", "LD002");
	exec_ok(dbc, "SET licdata.purpose = '" PURPOSE "'");
	n = run_lookup(st, param, &param_len, &people[0], problems, sizeof problems);
	check(n == 1 && !problems[0], "prepared lookup after SET back to " PURPOSE ": the person %s", problems);
	exec_ok(dbc, "SET licdata.consent_ref = ''");
	expect_state_prepared(st, "prepared lookup after SET licdata.consent_ref = ''", "LD007");
	exec_ok(dbc, "RESET licdata.consent_ref");
	check_eq_str("RESET licdata.consent_ref restores the Pqopt value", CONSENT,
				 scalar(dbc, "SHOW licdata.consent_ref"));
	n = run_lookup(st, param, &param_len, &people[0], problems, sizeof problems);
	check(n == 1 && !problems[0], "prepared lookup with the consent reference back: the person %s",
		  problems);
	SQLFreeHandle(SQL_HANDLE_STMT, st);
}

/* Table columns as SQLColumns reports them to the licensee. */
typedef struct
{
	char		name[64], type_name[64];
	SQLSMALLINT data_type, digits;
	long		size;
} ColInfo;
static ColInfo table_cols[16];
static int	ntable_cols;

static const ColInfo *
table_col(const char *name)
{
	int			i;

	for (i = 0; i < ntable_cols; i++)
		if (strcmp(table_cols[i].name, name) == 0)
			return &table_cols[i];
	return NULL;
}

/* SQLDescribeCol (and the type name) of a result against SQLColumns of the table. */
static void
compare_describe(const char *what, SQLHSTMT st)
{
	SQLSMALLINT ncols = 0, namelen, type, digits, nullable;
	SQLULEN		size;
	SQLCHAR		name[128];
	char		type_name[128], label[256];
	int			i;

	SQLNumResultCols(st, &ncols);
	check_eq_long(what, NLICENSED, ncols);
	for (i = 1; i <= ncols && i <= NLICENSED; i++)
	{
		const ColInfo *tc = table_col(licensed[i - 1]);

		if (!SQL_SUCCEEDED(SQLDescribeCol(st, (SQLUSMALLINT) i, name, sizeof name, &namelen, &type,
										  &size, &digits, &nullable)))
		{
			check(0, "%s: SQLDescribeCol(%d)", what, i);
			continue;
		}
		type_name[0] = '\0';
		SQLColAttribute(st, (SQLUSMALLINT) i, SQL_DESC_TYPE_NAME, type_name, sizeof type_name, NULL, NULL);
		if (!tc)
		{
			check(0, "%s: column %s not in SQLColumns", what, licensed[i - 1]);
			continue;
		}
		snprintf(label, sizeof label, "%s: %s name", what, tc->name);
		check_eq_str(label, tc->name, (char *) name);
		snprintf(label, sizeof label, "%s: %s type name as in the table (%s)", what, tc->name, tc->type_name);
		check_eq_str(label, tc->type_name, type_name);
		snprintf(label, sizeof label, "%s: %s SQL data type as in the table (%d)", what, tc->name,
				 tc->data_type);
		check_eq_long(label, tc->data_type, type);
		snprintf(label, sizeof label, "%s: %s column size as in the table (%ld)", what, tc->name, tc->size);
		check_eq_long(label, tc->size, (long) size);
		snprintf(label, sizeof label, "%s: %s decimal digits as in the table", what, tc->name);
		check_eq_long(label, tc->digits, digits);
	}
}

/* The usage rows of the licensee's statements whose text contains marker. */
static void
usage_of(SQLHDBC su, const char *marker, const char *cond, long *count, long *rows)
{
	char		sql[1024];
	SQLHSTMT	st = new_stmt(su);
	char		a[32], b[32];

	snprintf(sql, sizeof sql,
			 "SELECT count(*), coalesce(sum(rows_delivered), -1) FROM licdata.usage "
			 "WHERE licensee = '%s'::regrole AND statement LIKE '%%%s%%' "
			 "AND statement NOT LIKE '%%licdata.usage%%' AND %s", licensee, marker, cond);
	if (!SQL_SUCCEEDED(SQLExecDirect(st, (SQLCHAR *) sql, SQL_NTS)) || !SQL_SUCCEEDED(SQLFetch(st)))
		die("read licdata.usage", SQL_HANDLE_STMT, st);
	get_str(st, 1, a, sizeof a);
	get_str(st, 2, b, sizeof b);
	*count = atol(a);
	*rows = atol(b);
	SQLFreeHandle(SQL_HANDLE_STMT, st);
}

#define BLOCK 100

int
main(int argc, char **argv)
{
	SQLHDBC		su, bank, plain;
	long		licensed_rows, streamed = -1, block_calls = 0, plain_rows = -1, quota_rows = -1;
	char		msg[1024];
	int			i;

	if (argc != 2)
	{
		fprintf(stderr, "usage: odbc_test LICENSEE\n");
		return 2;
	}
	licensee = argv[1];
	setlocale(LC_ALL, "");
	setvbuf(stdout, NULL, _IOLBF, 0);

	if (!SQL_SUCCEEDED(SQLAllocHandle(SQL_HANDLE_ENV, SQL_NULL_HANDLE, &env)))
	{
		printf("FAIL: SQLAllocHandle(ENV)\n");
		return 1;
	}
	SQLSetEnvAttr(env, SQL_ATTR_ODBC_VERSION, (SQLPOINTER) SQL_OV_ODBC3, 0);

	su = connect_dsn("licdata_super");
	bank = connect_dsn("licdata_bank");
	plain = connect_dsn("licdata_plain");
	licensed_rows = scalar_long(su, "SELECT count(*) FROM pd.people WHERE region <> 'xj'");
	load_people(su);

	printf("-- startup options (Pqopt) reach the session\n");
	check_eq_str("licdata.purpose from Pqopt", PURPOSE, scalar(bank, "SHOW licdata.purpose"));
	check_eq_str("licdata.consent_ref from Pqopt", CONSENT, scalar(bank, "SHOW licdata.consent_ref"));
	check_eq_str("connected as the licensee", licensee, scalar(bank, "SELECT session_user"));
	check_eq_str("psqlODBC runs SELECTs through cursors (UseDeclareFetch=1)", "1",
				 scalar(bank, "SELECT count(*) FROM pg_cursors"));

	printf("-- ConnSettings (SQL after connecting) instead of Pqopt\n");
	{
		SQLHDBC		cs = connect_dsn("licdata_settings");

		check_eq_str("licdata.purpose from ConnSettings", PURPOSE, scalar(cs, "SHOW licdata.purpose"));
		check_eq_str("a licensed query works", "3",
					 scalar(cs, "SELECT count(*) FROM (SELECT person_id FROM pd.people LIMIT 3) p"));
		exec_ok(cs, "RESET licdata.purpose");
		expect_state(cs, "after RESET licdata.purpose (ConnSettings set no startup default)", "LD001",
					 "SELECT person_id FROM pd.people LIMIT 1", NULL, 0);
		disconnect(cs);
	}

	lookup_group(bank, "licdata_bank: UseDeclareFetch=1", "odbc-lookup-cursor", 0);
	lookup_group(plain, "licdata_plain: UseDeclareFetch=0, server-side prepare", "odbc-lookup-plain", 1);

	printf("-- streaming: server-side cursor (UseDeclareFetch=1, Fetch=100), SQL_ATTR_ROW_ARRAY_SIZE=%d\n", BLOCK);
	{
		SQLHSTMT	st = new_stmt(bank);
		static char ids[BLOCK][32], regions[BLOCK][8];
		static SQLLEN ids_ind[BLOCK], regions_ind[BLOCK];
		SQLULEN		fetched = 0;
		SQLRETURN	rc;
		long		bad = 0;
		SQLULEN		k;

		SQLSetConnectAttr(bank, SQL_ATTR_AUTOCOMMIT, (SQLPOINTER) SQL_AUTOCOMMIT_OFF, 0);
		SQLSetStmtAttr(st, SQL_ATTR_ROW_BIND_TYPE, (SQLPOINTER) SQL_BIND_BY_COLUMN, 0);
		SQLSetStmtAttr(st, SQL_ATTR_ROW_ARRAY_SIZE, (SQLPOINTER) (SQLULEN) BLOCK, 0);
		SQLSetStmtAttr(st, SQL_ATTR_ROWS_FETCHED_PTR, &fetched, 0);
		SQLBindCol(st, 1, SQL_C_CHAR, ids, sizeof ids[0], ids_ind);
		SQLBindCol(st, 2, SQL_C_CHAR, regions, sizeof regions[0], regions_ind);
		if (!SQL_SUCCEEDED(SQLExecDirect(st, (SQLCHAR *)
										 "SELECT /* odbc-stream */ id_number, region FROM pd.people",
										 SQL_NTS)))
			die("stream query", SQL_HANDLE_STMT, st);
		streamed = 0;
		while (SQL_SUCCEEDED(rc = SQLFetch(st)))
		{
			block_calls++;
			for (k = 0; k < fetched; k++)
				if (strlen(ids[k]) != 16 || strncmp(ids[k], "1101", 4) == 0 || strcmp(regions[k], "xj") == 0)
					bad++;
			streamed += (long) fetched;
		}
		if (rc != SQL_NO_DATA)
			die("stream fetch", SQL_HANDLE_STMT, st);
		check_eq_long("rows received through the cursor = licensed rows", licensed_rows, streamed);
		check_eq_long("SQLFetch calls of 100-row blocks", (licensed_rows + BLOCK - 1) / BLOCK, block_calls);
		check_eq_long("every streamed row masked and outside region xj", 0, bad);
		SQLCloseCursor(st);
		SQLFreeHandle(SQL_HANDLE_STMT, st);

		/* Read 250 rows one at a time and close: the driver fetched 3 x 100. */
		st = new_stmt(bank);
		if (!SQL_SUCCEEDED(SQLExecDirect(st, (SQLCHAR *)
										 "SELECT /* odbc-partial */ person_id FROM pd.people ORDER BY person_id",
										 SQL_NTS)))
			die("partial query", SQL_HANDLE_STMT, st);
		for (i = 0; i < 250 && SQL_SUCCEEDED(SQLFetch(st)); i++)
			;
		check_eq_long("read 250 rows of a cursor, then closed it", 250, i);
		SQLCloseCursor(st);
		SQLFreeHandle(SQL_HANDLE_STMT, st);

		/* The quota trips mid-cursor: the rows sent before the error are metered. */
		st = new_stmt(bank);
		quota_rows = 0;
		rc = SQLExecDirect(st, (SQLCHAR *) "SELECT /* odbc-quota-cursor */ * FROM pd.accounts", SQL_NTS);
		if (SQL_SUCCEEDED(rc))
			while (SQL_SUCCEEDED(rc = SQLFetch(st)))
				quota_rows++;
		{
			char		state[6];

			diag(SQL_HANDLE_STMT, st, state, msg, sizeof msg);
			check(rc != SQL_NO_DATA && strcmp(state, "LD006") == 0,
				  "cursor over 1000 rows under max_rows_per_query = 100 -> LD006 -- [%s] after %ld rows",
				  rc == SQL_NO_DATA ? "no error" : state, quota_rows);
		}
		check(quota_rows <= 100, "rows received before LD006 within the quota (%ld)", quota_rows);
		SQLFreeHandle(SQL_HANDLE_STMT, st);
		SQLEndTran(SQL_HANDLE_DBC, bank, SQL_ROLLBACK);
		SQLSetConnectAttr(bank, SQL_ATTR_AUTOCOMMIT, (SQLPOINTER) SQL_AUTOCOMMIT_ON, 0);
	}

	printf("-- streaming without cursors (UseDeclareFetch=0), row by row\n");
	{
		char		state[6];

		plain_rows = run_all(plain, "SELECT /* odbc-plain */ person_id, id_number, name, region, birth "
							 "FROM pd.people", state, msg, sizeof msg);
		check_eq_long("rows received = licensed rows", licensed_rows, plain_rows);
	}

	printf("-- denials carry their SQLSTATE\n");
	{
		SQLHDBC		np = connect_dsn("licdata_nopurpose");

		expect_state(np, "no purpose (DSN without Pqopt)", "LD001",
					 "SELECT /* odbc-deny */ person_id FROM pd.people LIMIT 1", NULL, 0);
		disconnect(np);
	}
	exec_ok(bank, "SET licdata.purpose = 'marketing'");
	expect_state(bank, "SET licdata.purpose = 'marketing' (unlicensed purpose)", "LD002",
				 "SELECT /* odbc-deny */ person_id FROM pd.people LIMIT 1", msg, sizeof msg);
	check(strstr(msg, PURPOSE) != NULL, "LD002 message lists the licensed purpose");
	exec_ok(bank, "SET licdata.purpose = '" PURPOSE "'");
	expect_state(bank, "SELECT salary", "LD003", "SELECT /* odbc-deny */ salary FROM pd.people LIMIT 1",
				 msg, sizeof msg);
	check(strstr(msg, "salary") != NULL, "LD003 message names the column");
	expect_state(bank, "SELECT * (includes salary)", "LD003",
				 "SELECT /* odbc-deny */ * FROM pd.people LIMIT 1", NULL, 0);
	expect_state(bank, "unlicensed dataset pd.tax_records", "LD005",
				 "SELECT /* odbc-deny */ * FROM pd.tax_records", NULL, 0);
	expect_state(plain, "quota: 1000 rows under max_rows_per_query = 100", "LD006",
				 "SELECT /* odbc-deny */ * FROM pd.accounts", NULL, 0);
	check_eq_str("within the quota: 50 rows of pd.accounts", "50",
				 scalar(bank, "SELECT count(*) FROM (SELECT * FROM pd.accounts LIMIT 50) a"));
	exec_ok(bank, "SET licdata.consent_ref = ''");
	expect_state(bank, "consent reference cleared (licence requires one)", "LD007",
				 "SELECT /* odbc-deny */ person_id FROM pd.people LIMIT 1", NULL, 0);
	exec_ok(bank, "RESET licdata.consent_ref");
	check_eq_str("the connection still works after the denials", "1",
				 scalar(bank, "SELECT count(*) FROM (SELECT person_id FROM pd.people LIMIT 1) p"));

	printf("-- catalog functions as the licensee (SQLTables, SQLColumns)\n");
	{
		SQLHSTMT	st = new_stmt(bank);
		long		n = 0;
		char		buf[64];

		if (!SQL_SUCCEEDED(SQLTables(st, NULL, 0, (SQLCHAR *) "pd", SQL_NTS, (SQLCHAR *) "people", SQL_NTS,
									 (SQLCHAR *) "TABLE", SQL_NTS)))
			die("SQLTables", SQL_HANDLE_STMT, st);
		while (SQL_SUCCEEDED(SQLFetch(st)))
			n++;
		check_eq_long("SQLTables(pd, people) finds the dataset", 1, n);
		SQLFreeStmt(st, SQL_CLOSE);
		if (!SQL_SUCCEEDED(SQLColumns(st, NULL, 0, (SQLCHAR *) "pd", SQL_NTS, (SQLCHAR *) "people", SQL_NTS,
									  (SQLCHAR *) "%", SQL_NTS)))
			die("SQLColumns", SQL_HANDLE_STMT, st);
		while (SQL_SUCCEEDED(SQLFetch(st)) && ntable_cols < 16)
		{
			ColInfo    *c = &table_cols[ntable_cols++];

			get_str(st, 4, c->name, sizeof c->name);
			get_str(st, 5, buf, sizeof buf);
			c->data_type = (SQLSMALLINT) atoi(buf);
			get_str(st, 6, c->type_name, sizeof c->type_name);
			get_str(st, 7, buf, sizeof buf);
			c->size = atol(buf);
			get_str(st, 9, buf, sizeof buf);
			c->digits = (SQLSMALLINT) atoi(buf);
		}
		SQLFreeHandle(SQL_HANDLE_STMT, st);
		check_eq_long("SQLColumns lists the 6 columns", 6, ntable_cols);
		{
			static const char *const want[][2] = {
				{"person_id", "int8"}, {"id_number", "varchar"}, {"name", "text"},
				{"region", "text"}, {"salary", "numeric"}, {"birth", "date"}};
			char		label[128];

			for (i = 0; i < 6; i++)
			{
				const ColInfo *c = table_col(want[i][0]);

				snprintf(label, sizeof label, "SQLColumns: %s has its real type", want[i][0]);
				check_eq_str(label, want[i][1], c ? c->type_name : NULL);
			}
			check_eq_long("SQLColumns: id_number is varchar(18)", 18,
						  table_col("id_number") ? table_col("id_number")->size : -1);
		}
	}

	printf("-- SQLDescribeCol of queries over the licensed (masked) columns\n");
	{
		SQLHSTMT	st = new_stmt(bank);

		if (!SQL_SUCCEEDED(SQLExecDirect(st, (SQLCHAR *)
										 "SELECT /* odbc-meta */ person_id, id_number, name, region, birth "
										 "FROM pd.people LIMIT 3", SQL_NTS)))
			die("describe query", SQL_HANDLE_STMT, st);
		compare_describe("SQLExecDirect result", st);
		SQLFreeHandle(SQL_HANDLE_STMT, st);

		st = new_stmt(plain);
		if (!SQL_SUCCEEDED(SQLPrepare(st, (SQLCHAR *) DESCRIBE_SQL, SQL_NTS)))
			die("SQLPrepare describe", SQL_HANDLE_STMT, st);
		compare_describe("SQLPrepare (before SQLExecute)", st);
		SQLFreeHandle(SQL_HANDLE_STMT, st);
		expect_state(bank, "SELECT * FROM pd.people (includes salary)", "LD003",
					 "SELECT * FROM pd.people LIMIT 3", NULL, 0);
	}

	printf("-- metering: usage rows record the rows received\n");
	{
		long		count, rows;
		char		sql[512];

		check_eq_str("licdata.flush() as superuser", "1", scalar(su, "SELECT licdata.flush()::int"));
		usage_of(su, "odbc-stream", "outcome = 'ok'", &count, &rows);
		check_eq_long("one usage row for the cursor stream", 1, count);
		check_eq_long("its rows_delivered = rows received", streamed, rows);
		usage_of(su, "odbc-partial", "outcome = 'ok'", &count, &rows);
		check_eq_long("one usage row for the partly read cursor", 1, count);
		check_eq_long("its rows_delivered = rows sent before the cursor closed (3 FETCHes of 100)", 300, rows);
		usage_of(su, "odbc-quota-cursor", "true", &count, &rows);
		check_eq_long("one usage row for the cursor stopped by the quota", 1, count);
		check_eq_long("its rows_delivered = rows received before the error", quota_rows, rows);
		snprintf(sql, sizeof sql,
				 "SELECT string_agg(outcome || '/' || coalesce(sqlstate, ''), ',') FROM licdata.usage "
				 "WHERE licensee = '%s'::regrole AND statement LIKE '%%odbc-quota-cursor%%' "
				 "AND statement NOT LIKE '%%licdata.usage%%'", licensee);
		check_eq_str("its outcome/sqlstate (the FETCH failed inside psqlODBC's statement savepoint)",
					 "error/LD006", scalar(su, sql));
		usage_of(su, "odbc-plain", "outcome = 'ok'", &count, &rows);
		check_eq_long("one usage row for the stream without cursors", 1, count);
		check_eq_long("its rows_delivered = rows received", plain_rows, rows);
		/* Per connection: 10 lookups, the xj miss, 2 after purpose/consent came back. */
		usage_of(su, "odbc-lookup-cursor", "outcome = 'ok'", &count, &rows);
		check_eq_long("usage rows of the successful lookups, UseDeclareFetch=1 (10 + xj miss + 2)", 13, count);
		check_eq_long("their rows_delivered = rows received", 12, rows);
		usage_of(su, "odbc-lookup-plain", "outcome = 'ok'", &count, &rows);
		check_eq_long("usage rows of the successful lookups, server-side prepare (10 + xj miss + 2)", 13, count);
		check_eq_long("their rows_delivered = rows received", 12, rows);
		snprintf(sql, sizeof sql,
				 "SELECT count(*) FROM licdata.usage WHERE licensee = '%s'::regrole AND statement LIKE "
				 "'%%odbc-stream%%' AND consent_ref = '" CONSENT "' AND purpose = '" PURPOSE "' "
				 "AND amount = 1 + rows * 0.001", licensee);
		check_eq_long("the stream's usage row: purpose, consent_ref, amount", 1, scalar_long(su, sql));
		check_eq_long("the licensee sees the stream in licdata.my_usage", streamed,
					  scalar_long(bank, "SELECT sum(rows_delivered) FROM licdata.my_usage "
								  "WHERE statement LIKE '%odbc-stream%' AND statement NOT LIKE '%my_usage%'"));
		{
			static const char *const states[] = {"LD001", "LD002", "LD003", "LD005", "LD006", "LD007"};

			for (i = 0; i < 6; i++)
			{
				snprintf(sql, sizeof sql,
						 "SELECT count(*) FROM licdata.audit_log WHERE licensee = '%s'::regrole "
						 "AND decision = 'deny' AND sqlstate = '%s'", licensee, states[i]);
				count = scalar_long(su, sql);
				check(count >= 1, "audit_log has the %s denial (%ld)", states[i], count);
			}
		}
		check_eq_str("audit chain verifies", "1", scalar(su, "SELECT ok::int FROM licdata.verify_audit()"));
	}

	disconnect(plain);
	disconnect(bank);
	disconnect(su);
	SQLFreeHandle(SQL_HANDLE_ENV, env);
	printf("odbc: %d passed, %d failed\n", npass, nfail);
	return nfail == 0 && npass > 0 ? 0 : 1;
}
