/*-------------------------------------------------------------------------
 *
 * licdata.h
 *	  Declarations shared between licdata's modules.
 *
 * Module map (one concern per file):
 *	licdata.c		_PG_init: preload check, GUCs, each module's init, hooks last
 *	guc.c			every GUC
 *	hooks.c			hook entry points; dispatch only
 *	utility.c		utility statements: COPY, DDL refusal, restores, EXPLAIN
 *	denial.c		refusing a licensee's statement: metered, then raised
 *	catalog.c		is licdata installed in this database, OIDs of its objects
 *	policy.c		backend-local cache of datasets, licensees, licences, masks
 *	decide.c		licence decisions (pure: they return a decision), the
 *					fingerprint of the terms a licence serves under
 *	plantag.c		the terms a plan was built under, carried in the plan
 *	rewrite.c		the query-tree change that serves a dataset through a licence
 *	expr.c			parsing and checking row filters and mask expressions
 *	aggregate.c		aggregate-only licences: shape checks and group gate
 *	fold.c			row counters where a statement folds rows into one value
 *	meter.c			per-statement accounting, quotas
 *	product.c		data products: licensed, metered calls of operators' functions
 *	journal.c		the durable, crash-safe metering journal
 *	worker.c		background worker moving journal records into tables
 *	shmem.c			shared state and its locking protocol
 *	keys.c			master key file and per-licensee keys (libsodium)
 *	keys_sql.c		export_master_key / import_master_key (superuser, log checks)
 *	mask.c			masking functions (C, SQL-callable)
 *	ff1.c			FF1 format-preserving encryption (OpenSSL AES)
 *	sqlfuncs.c		small SQL-callable helpers of the operator API
 *	visibility.c	worker sweep: licensees' privileges follow licence validity
 *	searchpath.c	search_path pinned around SQL licdata runs itself
 *
 *-------------------------------------------------------------------------
 */
#ifndef LICDATA_H
#define LICDATA_H

#include "postgres.h"

#include "nodes/parsenodes.h"
#include "nodes/pg_list.h"
#include "utils/timestamp.h"

#define LICDATA_SCHEMA			"licdata"
/* internal functions (1.1; in 1.0 they were in LICDATA_SCHEMA) */
#define LICDATA_INTERNAL_SCHEMA	"licdata_internal"
#define LICDATA_READER_ROLE		"licdata_reader"
#define LICDATA_OPERATOR_ROLE	"licdata_operator"
#define LICDATA_AUDITOR_ROLE	"licdata_auditor"
#define LICDATA_DIR				"pg_licdata"
/* The search_path every SQL text licdata runs or analyses is resolved under. */
#define LICDATA_SAFE_SEARCH_PATH	"pg_catalog, pg_temp"

/* licdata.c */
extern bool licdata_preloaded;

/* guc.c */
extern char *licdata_purpose;
extern char *licdata_consent_ref;
extern bool licdata_journal_sync;
extern int	licdata_flush_interval_ms;
extern bool licdata_audit_statement_text;
extern bool licdata_audit_operators;
extern char *licdata_database;
extern int	licdata_checkpoint_interval;
extern int	licdata_max_journal_size_kb;
extern void licdata_define_gucs(void);
struct LicdataLicensee;
extern const char *licdata_purpose_for(const struct LicdataLicensee *who);
extern const char *licdata_consent_ref_for(const struct LicdataLicensee *who);
extern bool licdata_purpose_session_only(const struct LicdataLicensee *who);

/* catalog.c */
typedef struct LicdataCatalog
{
	Oid			schema;
	Oid			internal_schema;	/* InvalidOid under 1.0 SQL objects */
	Oid			datasets;
	Oid			licensees;
	Oid			licences;
	Oid			masks;
	Oid			authorities;
	Oid			reader_role;
	Oid			operator_role;
	Oid			auditor_role;
	Oid			extension_owner;
	Oid			guard_func;		/* licdata.guard(), the RLS guard's function */
	bool		version_ok;		/* extversion is this library's version */
	char		sql_version[NAMEDATALEN];	/* pg_extension.extversion */
} LicdataCatalog;

extern const LicdataCatalog *licdata_catalog(void);
extern const LicdataCatalog *licdata_catalog_cached(void);
extern void licdata_catalog_init(void);
extern List *licdata_catalog_relids(void);
extern Oid	licdata_internal_function(const char *name, int nargs, const Oid *argtypes,
									  bool missing_ok);
extern void licdata_catalog_extension_altered(void);
extern void licdata_version_mismatch_texts(const LicdataCatalog *c, char **msg,
										   char **detail, char **hint);
extern void licdata_require_version_for_licensee(void);

/* policy.c: the cached catalog */
typedef struct LicdataMask
{
	char	   *column_name;
	char	   *method;
	char	   *params;			/* jsonb as text */
	int64		licence_id;		/* 0 = dataset default */
	char	   *purpose;		/* NULL = any purpose */
} LicdataMask;

typedef struct LicdataLicence
{
	int64		id;
	Oid			licensee;
	Oid			dataset;
	List	   *purposes;		/* of char * */
	List	   *columns;		/* of char *, NIL = every column */
	char	   *row_filter;		/* NULL = every row */
	TimestampTz valid_from;
	TimestampTz valid_until;	/* DT_NOEND when open-ended */
	int64		max_rows_per_query; /* 0 = no limit */
	int64		max_rows_per_day;
	int64		max_queries_per_day;
	int64		max_lookups_per_day;	/* licdata.token() calls; 0 = no limit */
	bool		require_consent_ref;
	char	   *price_per_query;	/* numeric as text; NULL = dataset's */
	char	   *price_per_row;
	bool		aggregate_mode;
	int			min_group_size;
	char		status;			/* 'a'ctive, 's'uspended, 'r'evoked */
	bool		unlicensed_null;	/* columns outside it read as NULL, not LD003 */
} LicdataLicence;

typedef struct LicdataDataset
{
	Oid			relid;
	char	   *name;			/* qualified, for messages */
	char	   *price_per_query;
	char	   *price_per_row;
	List	   *licences;		/* of LicdataLicence * */
	List	   *masks;			/* of LicdataMask * */
} LicdataDataset;

typedef struct LicdataLicensee
{
	Oid			roleid;
	int64		key_id;
	char	   *org_name;
	bool		purpose_xact;	/* purpose scope 'transaction': only SET LOCAL counts */
} LicdataLicensee;

extern uint64 licdata_policy_generation;
extern bool licdata_policy_loading;
extern void licdata_policy_init(void);
extern void licdata_policy_refresh(void);
extern LicdataDataset *licdata_dataset_for_rel(Oid relid);
extern bool licdata_any_datasets(void);
extern const LicdataLicensee *licdata_licensee_for_role(Oid roleid);
extern const LicdataLicensee *licdata_acting_licensee(void);
extern const LicdataLicensee *licdata_licensee_acted_by(Oid roleid);
extern bool licdata_acting_key_id(int64 *key_id);
extern bool licdata_role_is_operator(Oid roleid);
extern bool licdata_role_is_auditor(Oid roleid);
extern const LicdataMask *licdata_mask_for(LicdataDataset *ds, const LicdataLicence *lic,
										   const char *purpose, const char *column);
extern LicdataLicence *licdata_licence_by_id(int64 id);

/* decide.c */
typedef struct LicdataDecision
{
	int			sqlerrcode;		/* 0 = allowed */
	char	   *message;
	char	   *detail;
	char	   *hint;
	LicdataLicence *licence;	/* the licence that allows, when allowed */
} LicdataDecision;

extern void licdata_decide(LicdataDataset *ds, const LicdataLicensee *who,
						   const char *purpose, const char *consent_ref,
						   TimestampTz now, LicdataDecision *out);
extern void licdata_raise_decision(const LicdataDecision *d) pg_attribute_noreturn();
extern void licdata_decision_refusal(LicdataDecision *d, int sqlerrcode, char *message,
									 const char *detail, const char *hint);
extern void licdata_refuse_on_standby(void);
extern uint64 licdata_terms_fingerprint(const LicdataDataset *ds, const LicdataLicence *lic,
										const char *purpose);

/* visibility.c: licensees' privileges follow licence validity (worker) */
extern void licdata_privileges_sweep(void);

/* sqlfuncs.c */
extern void licdata_sqlfuncs_init(void);
extern char *licdata_home_database(void);

/* searchpath.c */
extern int	licdata_pin_search_path(void);
extern void licdata_unpin_search_path(int nestlevel);

/* expr.c */
extern Node *licdata_parse_row_filter(Oid relid, const char *filter, bool for_check);
extern Node *licdata_build_mask_expr(Oid relid, AttrNumber attnum, const char *method,
									 const char *params_json, bool for_check);

#endif							/* LICDATA_H */
