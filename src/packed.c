/*-------------------------------------------------------------------------
 *
 * packed.c
 *	  Record batches: the rows of many usage or audit records packed into
 *	  one bytea, written by the flusher (worker.c) into
 *	  licdata_internal.record_batches and read back as rows by the views
 *	  licdata.usage and licdata.audit_log.
 *
 * Why: a row per record costs PostgreSQL a heap tuple, its WAL and an
 * entry in every index -- several times what the licensee's statement
 * itself costs (BENCHMARKS.md, "Records stored per batch").  A batch of
 * thousands of records is one heap tuple whose packed columns TOAST
 * compresses (lz4 where the server has it) and one index entry.
 *
 * The format (all integers little-endian, whatever the machine, so a dump
 * restores anywhere):
 *
 *	"LDPK" u8 version(1) u8 0 u16 ncols u64 system identifier
 *	ncols x { u32 type oid, u8 name length, name }
 *	u32 nrows
 *	u32 nrefs, nrefs x { u8 kind, u32 oid, u8 length, schema, u8 length, name }
 *	nrows x ncols x { u8 0 (NULL) | u8 1, value }
 *
 * A value by type: int8, timestamptz, float8: 8 bytes; oid, regrole,
 * regclass, int4: 4; bool: 1; text, name, bytea: u32 length and the
 * bytes; numeric: u32 length and numeric_send's bytes; regclass[] and
 * oid[]: u32 count and 4 bytes each; int8[]: u32 count and 8 bytes each;
 * text[]: u32 count and each as text.  Arrays are one-dimensional without
 * NULLs (the flusher's are).
 *
 * Reading trusts nothing: the unpack functions are callable by anyone who
 * may read licdata.my_usage (function calls in a view run as the caller),
 * so anyone can hand them bytes of their own.  Every length is checked
 * against what is left, text is checked to be valid in the database
 * encoding, numeric goes through numeric_recv, and every datum is built by
 * the type's own constructor: bad bytes give an error, never a read out of
 * bounds.  Columns are matched to the row type by name (and must have the
 * same type): a column the row type has and a batch does not is NULL.
 *
 * Relations and roles (regclass, regrole) are stored as OIDs, and the batch
 * names each one it uses ("refs": kind 'c' with its schema and name, 'r'
 * with its name), as they were when it was packed.  A table stores such
 * a column as an OID too, and pg_dump writes it as a name that the restore
 * turns into the new cluster's OID; a batch is restored as bytes, so the
 * reader does that: in another cluster than the one that packed it (the
 * system identifier differs: a restored dump, not a standby), an OID that
 * does not name the same object is replaced by the OID of the object of
 * that name, if there is one.  In its own cluster an OID stays what it
 * is, as in a table (a dropped relation's OID is shown as a number).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xlog.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/acl.h"
#include "utils/lsyscache.h"
#include "catalog/namespace.h"
#include "utils/typcache.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "packed.h"

#define PACK_MAGIC "LDPK"
#define PACK_VERSION 1
#define PACK_MAX_COLS 64

typedef enum PackKind
{
	PK_F8,						/* 8 bytes: int8, timestamptz, float8 */
	PK_F4,						/* 4 bytes: oid-like, int4 */
	PK_BOOL,
	PK_TEXT,					/* text, and name (checked as text) */
	PK_NAME,
	PK_BYTEA,
	PK_NUMERIC,
	PK_A4,						/* regclass[], oid[] */
	PK_A8,						/* int8[] */
	PK_ATEXT					/* text[] */
} PackKind;

static bool
pack_kind(Oid typid, PackKind *kind, Oid *elem)
{
	*elem = InvalidOid;
	switch (typid)
	{
		case INT8OID:
		case TIMESTAMPTZOID:
		case FLOAT8OID:
			*kind = PK_F8;
			return true;
		case OIDOID:
		case REGROLEOID:
		case REGCLASSOID:
		case INT4OID:
			*kind = PK_F4;
			return true;
		case BOOLOID:
			*kind = PK_BOOL;
			return true;
		case TEXTOID:
			*kind = PK_TEXT;
			return true;
		case NAMEOID:
			*kind = PK_NAME;
			return true;
		case BYTEAOID:
			*kind = PK_BYTEA;
			return true;
		case NUMERICOID:
			*kind = PK_NUMERIC;
			return true;
		case REGCLASSARRAYOID:
			*kind = PK_A4;
			*elem = REGCLASSOID;
			return true;
		case OIDARRAYOID:
			*kind = PK_A4;
			*elem = OIDOID;
			return true;
		case INT8ARRAYOID:
			*kind = PK_A8;
			*elem = INT8OID;
			return true;
		case TEXTARRAYOID:
			*kind = PK_ATEXT;
			*elem = TEXTOID;
			return true;
		default:
			return false;
	}
}

/* ---- writing ---- */

static inline void
put_u8(StringInfo b, uint8 v)
{
	appendStringInfoCharMacro(b, (char) v);
}

static inline void
put_u16(StringInfo b, uint16 v)
{
	uint8		x[2] = {v & 0xff, v >> 8};

	appendBinaryStringInfo(b, (char *) x, 2);
}

static inline void
put_u32(StringInfo b, uint32 v)
{
	uint8		x[4] = {v & 0xff, (v >> 8) & 0xff, (v >> 16) & 0xff, v >> 24};

	appendBinaryStringInfo(b, (char *) x, 4);
}

static inline void
put_u64(StringInfo b, uint64 v)
{
	put_u32(b, (uint32) v);
	put_u32(b, (uint32) (v >> 32));
}

static inline void
put_bytes(StringInfo b, const char *p, Size n)
{
	if (n > (Size) PG_INT32_MAX)
		elog(ERROR, "a packed value of %zu bytes is too large", n);
	put_u32(b, (uint32) n);
	appendBinaryStringInfo(b, p, (int) n);
}

/*
 * Start packing rows of 'td'.  'rows' (may be NULL): a buffer of the
 * caller's to pack the rows into, emptied here and kept after the end (the
 * flusher keeps one per table across batches, so that a batch of megabytes
 * neither grows a new buffer nor faults its pages in again).
 */
void
licdata_pack_begin(PackWriter *w, TupleDesc td, StringInfo rows)
{
	int			ncols = 0;

	initStringInfo(&w->buf);
	if (rows)
	{
		resetStringInfo(rows);
		w->rows = rows;
	}
	else
	{
		initStringInfo(&w->own_rows);
		w->rows = &w->own_rows;
	}
	w->td = td;
	w->nrows = 0;
	w->nrefs = 0;
	w->maxrefs = 16;
	w->refs = palloc(sizeof(PackRef) * w->maxrefs);
	appendBinaryStringInfo(&w->buf, PACK_MAGIC, 4);
	put_u8(&w->buf, PACK_VERSION);
	put_u8(&w->buf, 0);
	for (int i = 0; i < td->natts; i++)
		if (!TupleDescAttr(td, i)->attisdropped)
			ncols++;
	if (ncols > PACK_MAX_COLS)
		elog(ERROR, "a packed row type has at most %d columns", PACK_MAX_COLS);
	put_u16(&w->buf, (uint16) ncols);
	put_u64(&w->buf, GetSystemIdentifier());
	for (int i = 0; i < td->natts; i++)
	{
		Form_pg_attribute a = TupleDescAttr(td, i);
		PackKind	kind;
		Oid			elem;
		size_t		nl = strlen(NameStr(a->attname));

		if (a->attisdropped)
			continue;
		if (!pack_kind(a->atttypid, &kind, &elem))
			elog(ERROR, "column \"%s\" has type %u, which record batches do not store",
				 NameStr(a->attname), a->atttypid);
		put_u32(&w->buf, a->atttypid);
		put_u8(&w->buf, (uint8) nl);
		appendBinaryStringInfo(&w->buf, NameStr(a->attname), (int) nl);
	}
}

/* Note a relation or role the rows name (a batch names few). */
static void
pack_ref(PackWriter *w, char kind, Oid oid)
{
	for (int i = w->nrefs - 1; i >= 0; i--)
		if (w->refs[i].oid == oid && w->refs[i].kind == kind)
			return;
	if (w->nrefs == w->maxrefs)
	{
		w->maxrefs *= 2;
		w->refs = repalloc(w->refs, sizeof(PackRef) * w->maxrefs);
	}
	w->refs[w->nrefs].kind = kind;
	w->refs[w->nrefs].oid = oid;
	w->nrefs++;
}

static void
pack_array(PackWriter *w, StringInfo b, PackKind kind, Oid elem, Datum d)
{
	ArrayType  *arr = DatumGetArrayTypeP(d);
	int			n = ArrayGetNItems(ARR_NDIM(arr), ARR_DIMS(arr));
	char	   *p = ARR_DATA_PTR(arr);

	if (ARR_NDIM(arr) > 1 || ARR_HASNULL(arr))
		elog(ERROR, "record batches store one-dimensional arrays without NULLs");
	put_u32(b, (uint32) n);
	for (int i = 0; i < n; i++)
	{
		switch (kind)
		{
			case PK_A4:
				{
					uint32		v;

					memcpy(&v, p, 4);
					put_u32(b, v);
					if (elem == REGCLASSOID)
						pack_ref(w, 'c', (Oid) v);
					p += 4;
					break;
				}
			case PK_A8:
				{
					uint64		v;

					memcpy(&v, p, 8);
					put_u64(b, v);
					p += 8;
					break;
				}
			default:
				{
					Size		len = VARSIZE_ANY_EXHDR(p);

					put_bytes(b, VARDATA_ANY(p), len);
					p = att_addlength_pointer(p, -1, p);
					p = (char *) att_align_nominal(p, TYPALIGN_INT);
					break;
				}
		}
	}
}

void
licdata_pack_row(PackWriter *w, const Datum *values, const bool *nulls)
{
	StringInfo	b = w->rows;
	TupleDesc	td = w->td;

	for (int i = 0; i < td->natts; i++)
	{
		Form_pg_attribute a = TupleDescAttr(td, i);
		PackKind	kind;
		Oid			elem;
		Datum		d = values[i];

		if (a->attisdropped)
			continue;
		if (nulls[i])
		{
			put_u8(b, 0);
			continue;
		}
		put_u8(b, 1);
		(void) pack_kind(a->atttypid, &kind, &elem);
		switch (kind)
		{
			case PK_F8:
				if (a->atttypid == FLOAT8OID)
				{
					float8		f = DatumGetFloat8(d);
					uint64		bits;

					memcpy(&bits, &f, 8);
					put_u64(b, bits);
				}
				else
					put_u64(b, (uint64) DatumGetInt64(d));
				break;
			case PK_F4:
				put_u32(b, (uint32) DatumGetObjectId(d));
				if (a->atttypid == REGCLASSOID)
					pack_ref(w, 'c', DatumGetObjectId(d));
				else if (a->atttypid == REGROLEOID)
					pack_ref(w, 'r', DatumGetObjectId(d));
				break;
			case PK_BOOL:
				put_u8(b, DatumGetBool(d) ? 1 : 0);
				break;
			case PK_NAME:
				{
					const char *s = NameStr(*DatumGetName(d));

					put_bytes(b, s, strnlen(s, NAMEDATALEN - 1));
					break;
				}
			case PK_TEXT:
			case PK_BYTEA:
				{
					struct varlena *v = PG_DETOAST_DATUM_PACKED(d);

					put_bytes(b, VARDATA_ANY(v), VARSIZE_ANY_EXHDR(v));
					break;
				}
			case PK_NUMERIC:
				{
					bytea	   *s = DatumGetByteaPP(DirectFunctionCall1(numeric_send, d));

					put_bytes(b, VARDATA_ANY(s), VARSIZE_ANY_EXHDR(s));
					pfree(s);
					break;
				}
			case PK_A4:
			case PK_A8:
			case PK_ATEXT:
				pack_array(w, b, kind, elem, d);
				break;
		}
	}
	w->nrows++;
}

static void
put_name(StringInfo b, const char *s)
{
	size_t		n = s ? strnlen(s, NAMEDATALEN - 1) : 0;

	put_u8(b, (uint8) n);
	if (n > 0)
		appendBinaryStringInfo(b, s, (int) n);
}

bytea *
licdata_pack_end(PackWriter *w)
{
	bytea	   *out;
	Size		len;

	put_u32(&w->buf, (uint32) w->nrows);
	put_u32(&w->buf, (uint32) w->nrefs);
	for (int i = 0; i < w->nrefs; i++)
	{
		PackRef    *r = &w->refs[i];

		put_u8(&w->buf, (uint8) r->kind);
		put_u32(&w->buf, r->oid);
		if (r->kind == 'c')
		{
			Oid			nsp = get_rel_namespace(r->oid);

			put_name(&w->buf, OidIsValid(nsp) ? get_namespace_name(nsp) : NULL);
			put_name(&w->buf, get_rel_name(r->oid));
		}
		else
		{
			put_name(&w->buf, NULL);
			put_name(&w->buf, GetUserNameFromId(r->oid, true));
		}
	}
	len = (Size) w->buf.len + w->rows->len;
	out = palloc(VARHDRSZ + len);
	SET_VARSIZE(out, VARHDRSZ + len);
	memcpy(VARDATA(out), w->buf.data, w->buf.len);
	memcpy(VARDATA(out) + w->buf.len, w->rows->data, w->rows->len);
	pfree(w->buf.data);
	if (w->rows == &w->own_rows)
		pfree(w->own_rows.data);
	pfree(w->refs);
	w->buf.data = NULL;
	w->rows = NULL;
	return out;
}

/* ---- reading ---- */

typedef struct Reader
{
	const uint8 *p;
	const uint8 *end;
	bool		foreign;		/* packed by another cluster */
	int			nmap;
	char	   *map_kind;		/* the batch's refs: kind, */
	Oid		   *map_from;		/* OID in the batch, */
	Oid		   *map_to;			/* OID here */
} Reader;

static Oid
remap(Reader *r, char kind, Oid oid)
{
	for (int i = 0; i < r->nmap; i++)
		if (r->map_from[i] == oid && r->map_kind[i] == kind)
			return r->map_to[i];
	return oid;
}

static void
bad_batch(const char *detail)
{
	ereport(ERROR,
			(errcode(ERRCODE_DATA_CORRUPTED),
			 errmsg("not a valid licdata record batch"),
			 errdetail("%s", detail),
			 errhint("Record batches are written by the licdata background worker only.")));
}

static inline void
need(Reader *r, Size n)
{
	if ((Size) (r->end - r->p) < n)
		bad_batch("The batch ends in the middle of a value.");
}

static inline uint8
get_u8(Reader *r)
{
	need(r, 1);
	return *r->p++;
}

static inline uint32
get_u32(Reader *r)
{
	uint32		v;

	need(r, 4);
	v = (uint32) r->p[0] | ((uint32) r->p[1] << 8) | ((uint32) r->p[2] << 16) | ((uint32) r->p[3] << 24);
	r->p += 4;
	return v;
}

static inline uint64
get_u64(Reader *r)
{
	uint64		lo = get_u32(r);

	return lo | ((uint64) get_u32(r) << 32);
}

static inline const char *
get_bytes(Reader *r, uint32 *len)
{
	const char *s;

	*len = get_u32(r);
	need(r, *len);
	s = (const char *) r->p;
	r->p += *len;
	return s;
}

static Datum
get_text(Reader *r)
{
	uint32		len;
	const char *s = get_bytes(r, &len);

	(void) pg_verifymbstr(s, (int) len, false);
	return PointerGetDatum(cstring_to_text_with_len(s, (int) len));
}

static Datum
get_array(Reader *r, PackKind kind, Oid elem)
{
	uint32		n = get_u32(r);
	Datum	   *elems;

	/* each element takes at least 4 bytes: no huge allocation from a lie */
	need(r, (Size) n * 4);
	if (n == 0)
		return PointerGetDatum(construct_empty_array(elem));
	elems = palloc(sizeof(Datum) * n);
	for (uint32 i = 0; i < n; i++)
	{
		if (kind == PK_A4)
			elems[i] = ObjectIdGetDatum(elem == REGCLASSOID ? remap(r, 'c', (Oid) get_u32(r)) :
										(Oid) get_u32(r));
		else if (kind == PK_A8)
			elems[i] = Int64GetDatum((int64) get_u64(r));
		else
			elems[i] = get_text(r);
	}
	if (kind == PK_A4)
		return PointerGetDatum(construct_array(elems, (int) n, elem, sizeof(Oid), true, TYPALIGN_INT));
	if (kind == PK_A8)
		return PointerGetDatum(construct_array(elems, (int) n, elem, sizeof(int64), FLOAT8PASSBYVAL,
											   TYPALIGN_DOUBLE));
	return PointerGetDatum(construct_array(elems, (int) n, elem, -1, false, TYPALIGN_INT));
}

static Datum
get_value(Reader *r, Oid typid)
{
	PackKind	kind;
	Oid			elem;

	(void) pack_kind(typid, &kind, &elem);
	switch (kind)
	{
		case PK_F8:
			{
				uint64		v = get_u64(r);

				if (typid == FLOAT8OID)
				{
					float8		f;

					memcpy(&f, &v, 8);
					return Float8GetDatum(f);
				}
				return Int64GetDatum((int64) v);
			}
		case PK_F4:
			if (typid == REGCLASSOID)
				return ObjectIdGetDatum(remap(r, 'c', (Oid) get_u32(r)));
			if (typid == REGROLEOID)
				return ObjectIdGetDatum(remap(r, 'r', (Oid) get_u32(r)));
			return ObjectIdGetDatum((Oid) get_u32(r));
		case PK_BOOL:
			return BoolGetDatum(get_u8(r) != 0);
		case PK_TEXT:
			return get_text(r);
		case PK_NAME:
			{
				uint32		len;
				const char *s = get_bytes(r, &len);
				Name		nm;

				if (len >= NAMEDATALEN)
					bad_batch("A name is too long.");
				(void) pg_verifymbstr(s, (int) len, false);
				nm = palloc0(NAMEDATALEN);
				memcpy(NameStr(*nm), s, len);
				return NameGetDatum(nm);
			}
		case PK_BYTEA:
			{
				uint32		len;
				const char *s = get_bytes(r, &len);
				bytea	   *b = palloc(VARHDRSZ + len);

				SET_VARSIZE(b, VARHDRSZ + len);
				memcpy(VARDATA(b), s, len);
				return PointerGetDatum(b);
			}
		case PK_NUMERIC:
			{
				uint32		len;
				const char *s = get_bytes(r, &len);
				StringInfoData si;
				Datum		d;

				/* numeric_send: int16 ndigits, weight, sign, dscale, digits */
				if (len < 8 || len != 8 + 2 * (uint32) (((uint8) s[0] << 8) | (uint8) s[1]))
					bad_batch("A numeric value's length is not valid.");
				si.data = palloc(len + 1);
				memcpy(si.data, s, len);
				si.data[len] = '\0';
				si.len = (int) len;
				si.maxlen = (int) len + 1;
				si.cursor = 0;
				d = DirectFunctionCall3(numeric_recv, PointerGetDatum(&si),
										ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1));
				if (si.cursor != si.len)
					bad_batch("A numeric value has bytes left over.");
				pfree(si.data);
				return d;
			}
		case PK_A4:
		case PK_A8:
		case PK_ATEXT:
			return get_array(r, kind, elem);
	}
	return (Datum) 0;			/* not reached */
}

static void
get_name(Reader *r, char *out)
{
	uint8		n = get_u8(r);

	if (n >= NAMEDATALEN)
		bad_batch("A name is too long.");
	need(r, n);
	memcpy(out, r->p, n);
	out[n] = '\0';
	r->p += n;
}

/*
 * The batch's relations and roles, each mapped to the OID it has here: the
 * same when the OID still names the same object, else the OID of the object
 * of that name (a restored dump), else unchanged.
 */
static void
read_refs(Reader *r)
{
	uint32		n = get_u32(r);

	/* each ref takes at least 7 bytes: no huge allocation from a lie */
	need(r, (Size) n * 7);
	r->nmap = (int) n;
	r->map_kind = palloc(Max(n, 1));
	r->map_from = palloc(sizeof(Oid) * Max(n, 1));
	r->map_to = palloc(sizeof(Oid) * Max(n, 1));
	for (uint32 i = 0; i < n; i++)
	{
		char		kind = (char) get_u8(r);
		Oid			oid = (Oid) get_u32(r);
		char		nsp[NAMEDATALEN];
		char		name[NAMEDATALEN];
		Oid			to = oid;

		get_name(r, nsp);
		get_name(r, name);
		if (kind != 'c' && kind != 'r')
			bad_batch("A reference's kind is not valid.");
		if (!r->foreign)
			;					/* an OID means here what it meant */
		else if (kind == 'c' && name[0] != '\0')
		{
			char	   *now = get_rel_name(oid);
			Oid			nspid = get_rel_namespace(oid);
			char	   *nownsp = OidIsValid(nspid) ? get_namespace_name(nspid) : NULL;

			if (now == NULL || nownsp == NULL || strcmp(now, name) != 0 || strcmp(nownsp, nsp) != 0)
			{
				Oid			n2 = get_namespace_oid(nsp, true);
				Oid			rel = OidIsValid(n2) ? get_relname_relid(name, n2) : InvalidOid;

				if (OidIsValid(rel))
					to = rel;
			}
		}
		else if (kind == 'r' && name[0] != '\0')
		{
			char	   *now = GetUserNameFromId(oid, true);

			if (now == NULL || strcmp(now, name) != 0)
			{
				Oid			role = get_role_oid(name, true);

				if (OidIsValid(role))
					to = role;
			}
		}
		r->map_kind[i] = kind;
		r->map_from[i] = oid;
		r->map_to[i] = to;
	}
}

/*
 * licdata_internal._unpack_usage(bytea) / _unpack_audit(bytea): the rows of
 * a batch, as the function's declared row type.
 */
PG_FUNCTION_INFO_V1(licdata_unpack);
Datum
licdata_unpack(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	bytea	   *data = PG_GETARG_BYTEA_PP(0);
	Reader		r;
	TupleDesc	td;
	int			ncols;
	Oid			coltype[PACK_MAX_COLS];
	int			colatt[PACK_MAX_COLS];	/* result attribute, or -1 */
	uint32		nrows;
	Datum	   *values;
	bool	   *nulls;
	MemoryContext rowcxt;
	MemoryContext old;

	InitMaterializedSRF(fcinfo, 0);
	td = rsinfo->setDesc;
	memset(&r, 0, sizeof(r));
	r.p = (const uint8 *) VARDATA_ANY(data);
	r.end = r.p + VARSIZE_ANY_EXHDR(data);

	need(&r, 16);
	if (memcmp(r.p, PACK_MAGIC, 4) != 0)
		bad_batch("The batch does not start with the batch marker.");
	r.p += 4;
	if (get_u8(&r) != PACK_VERSION)
		bad_batch("The batch's format version is not one this library reads.");
	(void) get_u8(&r);
	ncols = r.p[0] | (r.p[1] << 8);
	r.p += 2;
	r.foreign = get_u64(&r) != GetSystemIdentifier();
	if (ncols > PACK_MAX_COLS)
		bad_batch("The batch has too many columns.");
	for (int c = 0; c < ncols; c++)
	{
		uint8		nl;
		char		name[NAMEDATALEN];
		PackKind	kind;
		Oid			elem;

		coltype[c] = get_u32(&r);
		nl = get_u8(&r);
		if (nl >= NAMEDATALEN)
			bad_batch("A column name is too long.");
		need(&r, nl);
		memcpy(name, r.p, nl);
		name[nl] = '\0';
		r.p += nl;
		if (!pack_kind(coltype[c], &kind, &elem))
			bad_batch("A column has a type record batches do not store.");
		colatt[c] = -1;
		for (int i = 0; i < td->natts; i++)
		{
			Form_pg_attribute a = TupleDescAttr(td, i);

			if (!a->attisdropped && strcmp(NameStr(a->attname), name) == 0)
			{
				if (a->atttypid != coltype[c])
					bad_batch("A column's type differs from the row type's.");
				for (int k = 0; k < c; k++)
					if (colatt[k] == i)
						bad_batch("A column appears twice.");
				colatt[c] = i;
				break;
			}
		}
	}
	nrows = get_u32(&r);
	read_refs(&r);
	if (!r.foreign)
		r.nmap = 0;				/* nothing to map */

	values = palloc(sizeof(Datum) * td->natts);
	nulls = palloc(sizeof(bool) * td->natts);
	rowcxt = AllocSetContextCreate(CurrentMemoryContext, "licdata unpack row", ALLOCSET_DEFAULT_SIZES);
	for (uint32 n = 0; n < nrows; n++)
	{
		CHECK_FOR_INTERRUPTS();
		old = MemoryContextSwitchTo(rowcxt);
		for (int i = 0; i < td->natts; i++)
		{
			values[i] = (Datum) 0;
			nulls[i] = true;
		}
		for (int c = 0; c < ncols; c++)
		{
			uint8		flag = get_u8(&r);
			Datum		d;

			if (flag == 0)
				continue;
			if (flag != 1)
				bad_batch("A value's marker is not valid.");
			d = get_value(&r, coltype[c]);
			if (colatt[c] >= 0)
			{
				values[colatt[c]] = d;
				nulls[colatt[c]] = false;
			}
		}
		MemoryContextSwitchTo(old);
		tuplestore_putvalues(rsinfo->setResult, td, values, nulls);
		MemoryContextReset(rowcxt);
	}
	if (r.p != r.end)
		bad_batch("There are bytes after the last row.");
	MemoryContextDelete(rowcxt);
	return (Datum) 0;
}

/*
 * licdata_internal._pack(rows anyarray): rows of a composite type packed as
 * the flusher packs them (purge_records packs a batch again with the
 * records it keeps).
 */
PG_FUNCTION_INFO_V1(licdata_pack);
Datum
licdata_pack(PG_FUNCTION_ARGS)
{
	ArrayType  *arr = PG_GETARG_ARRAYTYPE_P(0);
	Oid			elemtype = ARR_ELEMTYPE(arr);
	TupleDesc	td;
	PackWriter	w;
	Datum	   *elems;
	bool	   *elnulls;
	int			n;
	int16		typlen;
	bool		typbyval;
	char		typalign;
	Datum	   *values;
	bool	   *nulls;

	if (!type_is_rowtype(elemtype))
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("rows to pack must be of a composite type")));
	td = lookup_rowtype_tupdesc_copy(elemtype, -1);
	get_typlenbyvalalign(elemtype, &typlen, &typbyval, &typalign);
	deconstruct_array(arr, elemtype, typlen, typbyval, typalign, &elems, &elnulls, &n);
	values = palloc(sizeof(Datum) * td->natts);
	nulls = palloc(sizeof(bool) * td->natts);
	licdata_pack_begin(&w, td, NULL);
	for (int i = 0; i < n; i++)
	{
		HeapTupleHeader h;
		HeapTupleData t;

		if (elnulls[i])
			continue;
		h = DatumGetHeapTupleHeader(elems[i]);
		t.t_len = HeapTupleHeaderGetDatumLength(h);
		ItemPointerSetInvalid(&t.t_self);
		t.t_tableOid = InvalidOid;
		t.t_data = h;
		heap_deform_tuple(&t, td, values, nulls);
		licdata_pack_row(&w, values, nulls);
	}
	PG_RETURN_BYTEA_P(licdata_pack_end(&w));
}
