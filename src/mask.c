/*-------------------------------------------------------------------------
 *
 * mask.c
 *	  The masking functions, callable from SQL (schema/30_masks.sql) and
 *	  built into licensees' queries by the rewrite (src/expr.c).
 *
 * Every function here:
 *	- returns NULL for a NULL value (STRICT in SQL, or checked here where
 *	  a parameter has a NULL default);
 *	- keeps the value's type;
 *	- counts characters, not bytes (pg_mblen_range), in the database
 *	  encoding;
 *	- never puts a data value or key material in an error message: errors
 *	  name the parameter that is wrong, or the shape of the problem;
 *	- is PARALLEL SAFE: no state is shared between processes except the
 *	  key file, read through keys.c.
 *
 * Keyed methods (pseudonym, fpe, noise) use keys derived per licensee from
 * the cluster's master key (keys.c).  The variants without a licensee
 * argument use the key of the licensee the session acts for and refuse a
 * session that acts for none; the variants with a licensee argument are
 * for operators.
 *
 * Choices made where the specification leaves room (also in README):
 *	- partial: one pad string per hidden character.  When keep_first +
 *	  keep_last would leave nothing hidden, the kept ends shrink (the longer
 *	  end first, the end on ties) until exactly one character is hidden; a
 *	  one-character value becomes the pad.
 *	- email: the last '@' splits local part and domain; the first character
 *	  of the local part is kept when the local part has two or more
 *	  characters, the rest of the local part is '*', the domain is kept.  A
 *	  value without '@' becomes all '*'.
 *	- cn_mobile: an 11-digit number starting with 1, optionally after +86,
 *	  0086 or 86 and spaces or hyphens, keeps its first 3 and last 4 digits
 *	  (and the prefix and separators).  Anything else: every digit but the
 *	  last 4 becomes '*', or every digit when there are 4 or fewer; other
 *	  characters are kept.  Full-width digits count as digits.
 *	- cn_id: 18 characters (17 digits and a digit or X/x): first 6 and last
 *	  4 kept.  15 digits: first 6 and last 3 kept.  Anything else: the first
 *	  and last quarter (rounded down) kept, the rest '*'.
 *	- cn_name: a name starting with a Latin letter keeps its first word and
 *	  stars the other letters (spaces kept); a single Latin word keeps only
 *	  its first letter.  Otherwise the surname is kept: a compound surname
 *	  from compound_surnames[] when the name is longer than it, else the
 *	  first character; the rest is '*' per character.  A one-character
 *	  value is returned as it is (it is only a surname).  Compound
 *	  surnames are recognised in UTF-8 databases only; elsewhere the first
 *	  character is kept, which hides more, not less.
 *	- pseudonym: lowercase RFC 4648 base32 (a-z, 2-7) of the keyed
 *	  BLAKE2b-320 digest of the value's bytes, truncated to length (8..64)
 *	  characters; a shorter token is a prefix of a longer one.
 *	- fpe: characters not in the alphabet keep their place and are not
 *	  encrypted (so '0123456789' leaves the X of a resident ID in place);
 *	  a value without any alphabet character is returned as it is; a
 *	  value with fewer alphabet characters than FF1 allows is an error.
 *	  The tweak is empty.
 *	- noise: integers are rounded and saturate at the type's limits;
 *	  numeric keeps its scale; float8 saturates at +-DBL_MAX.
 *	- mask_function: the function must take exactly the value's type and
 *	  return it, not return a set, and be executable by the caller.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <float.h>
#include <math.h>

#include "access/htup_details.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "common/int.h"
#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/datetime.h"
#include "utils/float.h"
#include "utils/fmgrprotos.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "utils/regproc.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "errcodes.h"
#include "ff1.h"
#include "keys.h"
#include "licdata.h"

PG_FUNCTION_INFO_V1(licdata_mask_redact);
PG_FUNCTION_INFO_V1(licdata_mask_partial);
PG_FUNCTION_INFO_V1(licdata_mask_email);
PG_FUNCTION_INFO_V1(licdata_mask_cn_mobile);
PG_FUNCTION_INFO_V1(licdata_mask_cn_id);
PG_FUNCTION_INFO_V1(licdata_mask_cn_name);
PG_FUNCTION_INFO_V1(licdata_mask_pseudonym);
PG_FUNCTION_INFO_V1(licdata_mask_pseudonym_for);
PG_FUNCTION_INFO_V1(licdata_mask_fpe);
PG_FUNCTION_INFO_V1(licdata_mask_fpe_for);
PG_FUNCTION_INFO_V1(licdata_unmask_fpe);
PG_FUNCTION_INFO_V1(licdata_ff1_test);
PG_FUNCTION_INFO_V1(licdata_mask_date_trunc_date);
PG_FUNCTION_INFO_V1(licdata_mask_date_trunc_ts);
PG_FUNCTION_INFO_V1(licdata_mask_date_trunc_tstz);
PG_FUNCTION_INFO_V1(licdata_mask_bucket_int2);
PG_FUNCTION_INFO_V1(licdata_mask_bucket_int4);
PG_FUNCTION_INFO_V1(licdata_mask_bucket_int8);
PG_FUNCTION_INFO_V1(licdata_mask_bucket_numeric);
PG_FUNCTION_INFO_V1(licdata_mask_bucket_float8);
PG_FUNCTION_INFO_V1(licdata_mask_bucket_float4);
PG_FUNCTION_INFO_V1(licdata_mask_noise_int4);
PG_FUNCTION_INFO_V1(licdata_mask_noise_int8);
PG_FUNCTION_INFO_V1(licdata_mask_noise_numeric);
PG_FUNCTION_INFO_V1(licdata_mask_noise_float8);
PG_FUNCTION_INFO_V1(licdata_mask_function);
PG_FUNCTION_INFO_V1(licdata_rotate_master_key);

#define PSEUDONYM_MIN_LENGTH	8
#define PSEUDONYM_MAX_LENGTH	64

/*
 * Chinese compound surnames (复姓), simplified and traditional forms, from
 * the Hundred Family Surnames (百家姓) and common Manchu and Xianbei clan
 * names.  A name starting with one of these, and longer than it, keeps the
 * whole compound surname; the longest match wins.
 */
#define SURNAME(s)	{s, sizeof(s) - 1}

static const struct
{
	const char *name;		/* UTF-8 */
	int			bytes;
}			compound_surnames[] = {
	/* three and four characters */
	SURNAME("爱新觉罗"), SURNAME("愛新覺羅"), SURNAME("叶赫那拉"), SURNAME("葉赫那拉"), SURNAME("钮祜禄"),
	SURNAME("鈕祜祿"),
	/* two characters, simplified */
	SURNAME("欧阳"), SURNAME("司马"), SURNAME("诸葛"), SURNAME("上官"), SURNAME("东方"),
	SURNAME("皇甫"), SURNAME("尉迟"), SURNAME("公孙"), SURNAME("慕容"), SURNAME("长孙"),
	SURNAME("宇文"), SURNAME("司徒"), SURNAME("令狐"), SURNAME("夏侯"), SURNAME("轩辕"),
	SURNAME("端木"), SURNAME("独孤"), SURNAME("南宫"), SURNAME("西门"), SURNAME("百里"),
	SURNAME("呼延"), SURNAME("闻人"), SURNAME("澹台"), SURNAME("公冶"), SURNAME("太史"),
	SURNAME("申屠"), SURNAME("钟离"), SURNAME("赫连"), SURNAME("拓跋"), SURNAME("第五"),
	SURNAME("万俟"), SURNAME("宗政"), SURNAME("濮阳"), SURNAME("公羊"), SURNAME("太叔"),
	SURNAME("仲孙"), SURNAME("鲜于"), SURNAME("司空"), SURNAME("闾丘"), SURNAME("子车"),
	SURNAME("亓官"), SURNAME("司寇"), SURNAME("巫马"), SURNAME("公西"), SURNAME("颛孙"),
	SURNAME("壤驷"), SURNAME("公良"), SURNAME("漆雕"), SURNAME("乐正"), SURNAME("宰父"),
	SURNAME("谷梁"), SURNAME("夹谷"), SURNAME("段干"), SURNAME("东郭"), SURNAME("南门"),
	SURNAME("羊舌"), SURNAME("微生"), SURNAME("梁丘"), SURNAME("左丘"), SURNAME("东门"),
	SURNAME("公伯"), SURNAME("公祖"), SURNAME("第一"), SURNAME("即墨"), SURNAME("达奚"),
	SURNAME("褚师"), SURNAME("单于"), SURNAME("完颜"), SURNAME("耶律"), SURNAME("淳于"),
	SURNAME("长鱼"), SURNAME("胡母"),
	/* two characters, traditional where they differ */
	SURNAME("歐陽"), SURNAME("司馬"), SURNAME("諸葛"), SURNAME("東方"), SURNAME("尉遲"),
	SURNAME("公孫"), SURNAME("長孫"), SURNAME("軒轅"), SURNAME("獨孤"), SURNAME("南宮"),
	SURNAME("西門"), SURNAME("聞人"), SURNAME("澹臺"), SURNAME("鍾離"), SURNAME("赫連"),
	SURNAME("萬俟"), SURNAME("鮮于"), SURNAME("閭丘"), SURNAME("顓孫"), SURNAME("壤駟"),
	SURNAME("樂正"), SURNAME("穀梁"), SURNAME("夾谷"), SURNAME("東郭"), SURNAME("單于"),
	SURNAME("東門"),
};

#undef SURNAME

/* lower-case RFC 4648 base32 */
static const char base32_alphabet[] = "abcdefghijklmnopqrstuvwxyz234567";

/* alphabet of licdata._ff1_test (NIST samples use radix 10 and 36) */
static const char ff1_test_alphabet[] = "0123456789abcdefghijklmnopqrstuvwxyz";

/* The FF1 key currently loaded into ff1.c's cipher context. */
static bool fpe_keyed = false;
static int64 fpe_key_id = 0;
static uint64 fpe_key_epoch = 0;
static bool fpe_exit_registered = false;

/* ----------------------------------------------------------------
 * Character helpers
 * ----------------------------------------------------------------
 */

/* Byte length of the character at p; never past end. */
static inline int
char_len(const char *p, const char *end)
{
	return pg_mblen_range(p, end);
}

/* Pointer past the first n characters of [p, end), or end. */
static const char *
skip_chars(const char *p, const char *end, int64 n)
{
	while (n-- > 0 && p < end)
		p += char_len(p, end);
	return p;
}

/* Full-width digits U+FF10..U+FF19 in UTF-8 are EF BC 90..99. */
static inline bool
is_fullwidth_digit(const char *p, int len)
{
	return len == 3 && GetDatabaseEncoding() == PG_UTF8 &&
		(unsigned char) p[0] == 0xEF && (unsigned char) p[1] == 0xBC &&
		(unsigned char) p[2] >= 0x90 && (unsigned char) p[2] <= 0x99;
}

/* A digit, ASCII or full width; *value gets 0..9. */
static inline bool
is_any_digit(const char *p, int len, int *value)
{
	if (len == 1 && p[0] >= '0' && p[0] <= '9')
	{
		*value = p[0] - '0';
		return true;
	}
	if (is_fullwidth_digit(p, len))
	{
		*value = (unsigned char) p[2] - 0x90;
		return true;
	}
	return false;
}

static void
check_alloc_size(int64 size)
{
	if (size < 0 || size > (int64) (MaxAllocSize - VARHDRSZ))
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("masked value would be too long"),
				 errdetail("A text value is limited to %d bytes.",
						   (int) (MaxAllocSize - VARHDRSZ))));
}

/*
 * The partial mask of s[0..len): the first keep_first and last keep_last
 * characters kept, every other character replaced by pad.  The kept ends
 * shrink so that at least one character is hidden (see the file header).
 */
static text *
partial_core(const char *s, int len, int64 keep_first, int64 keep_last,
			 const char *pad, int padlen)
{
	const char *end = s + len;
	const char *head_end;
	const char *tail_start;
	int64		n;
	int64		hidden;
	int64		outlen;
	text	   *result;
	char	   *w;

	n = pg_mbstrlen_with_len(s, len);
	if (n == 0)
		return cstring_to_text_with_len("", 0);

	/* keep at most n - 1 characters: shrink the longer end, the end on ties */
	keep_first = Min(keep_first, n - 1);
	keep_last = Min(keep_last, n - 1);
	while (keep_first + keep_last > n - 1)
	{
		if (keep_last >= keep_first)
			keep_last--;
		else
			keep_first--;
	}
	hidden = n - keep_first - keep_last;

	head_end = skip_chars(s, end, keep_first);
	tail_start = skip_chars(head_end, end, hidden);

	outlen = (head_end - s) + hidden * padlen + (end - tail_start);
	check_alloc_size(outlen);
	result = (text *) palloc(VARHDRSZ + outlen);
	SET_VARSIZE(result, VARHDRSZ + outlen);
	w = VARDATA(result);
	memcpy(w, s, head_end - s);
	w += head_end - s;
	if (padlen == 1)
	{
		memset(w, pad[0], hidden);
		w += hidden;
	}
	else
	{
		for (int64 i = 0; i < hidden; i++)
		{
			memcpy(w, pad, padlen);
			w += padlen;
		}
	}
	memcpy(w, tail_start, end - tail_start);
	return result;
}

/* Buffer for building a masked text value. */
typedef struct MaskBuf
{
	text	   *t;
	char	   *w;
} MaskBuf;

static void
maskbuf_init(MaskBuf *b, int64 maxlen)
{
	check_alloc_size(maxlen);
	b->t = (text *) palloc(VARHDRSZ + maxlen);
	b->w = VARDATA(b->t);
}

static inline void
maskbuf_put(MaskBuf *b, const char *p, int len)
{
	memcpy(b->w, p, len);
	b->w += len;
}

static text *
maskbuf_finish(MaskBuf *b)
{
	SET_VARSIZE(b->t, b->w - (char *) b->t);
	return b->t;
}

/* ----------------------------------------------------------------
 * redact, partial, email, cn_mobile, cn_id, cn_name
 * ----------------------------------------------------------------
 */

/*
 * mask_redact(value anyelement, with anyelement DEFAULT NULL): the
 * constant, or NULL.  Not strict: the value itself is never looked at.
 */
Datum
licdata_mask_redact(PG_FUNCTION_ARGS)
{
	if (PG_NARGS() < 2 || PG_ARGISNULL(1))
		PG_RETURN_NULL();
	PG_RETURN_DATUM(PG_GETARG_DATUM(1));
}

/*
 * mask_partial(value text, keep_first int, keep_last int, pad text)
 */
Datum
licdata_mask_partial(PG_FUNCTION_ARGS)
{
	text	   *value = PG_GETARG_TEXT_PP(0);
	int32		keep_first = PG_GETARG_INT32(1);
	int32		keep_last = PG_GETARG_INT32(2);
	text	   *pad = PG_GETARG_TEXT_PP(3);

	if (keep_first < 0 || keep_last < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("keep_first and keep_last must not be negative"),
				 errhint("Pass the number of characters to keep at each end, zero or more.")));

	PG_RETURN_TEXT_P(partial_core(VARDATA_ANY(value), VARSIZE_ANY_EXHDR(value),
								  keep_first, keep_last,
								  VARDATA_ANY(pad), VARSIZE_ANY_EXHDR(pad)));
}

/*
 * mask_email(value text): z********@example.cn
 */
Datum
licdata_mask_email(PG_FUNCTION_ARGS)
{
	text	   *value = PG_GETARG_TEXT_PP(0);
	const char *s = VARDATA_ANY(value);
	int			len = VARSIZE_ANY_EXHDR(value);
	const char *end = s + len;
	const char *at = NULL;
	int64		local_chars;
	MaskBuf		b;

	/*
	 * The last '@'.  In server encodings a byte below 0x80 is never part of
	 * a multibyte character, so a byte scan is safe.
	 */
	for (int i = len - 1; i >= 0; i--)
	{
		if (s[i] == '@')
		{
			at = s + i;
			break;
		}
	}
	if (at == NULL)
		PG_RETURN_TEXT_P(partial_core(s, len, 0, 0, "*", 1));

	local_chars = pg_mbstrlen_with_len(s, at - s);
	maskbuf_init(&b, (int64) len + local_chars);
	if (local_chars >= 2)
	{
		int			l = char_len(s, at);

		maskbuf_put(&b, s, l);
		local_chars--;
	}
	memset(b.w, '*', local_chars);
	b.w += local_chars;
	maskbuf_put(&b, at, end - at);
	PG_RETURN_TEXT_P(maskbuf_finish(&b));
}

/*
 * Does [p, end) hold, apart from spaces and hyphens, exactly 11 digits of
 * which the first is 1?  (A mainland mobile number.)
 */
static bool
is_cn_mobile_body(const char *p, const char *end)
{
	int			digits = 0;

	while (p < end)
	{
		int			l = char_len(p, end);
		int			d;

		if (is_any_digit(p, l, &d))
		{
			if (digits == 0 && d != 1)
				return false;
			digits++;
		}
		else if (!(l == 1 && (*p == ' ' || *p == '-')))
			return false;
		p += l;
	}
	return digits == 11;
}

/*
 * mask_cn_mobile(value text): 138****1234, +86 138****1234
 */
Datum
licdata_mask_cn_mobile(PG_FUNCTION_ARGS)
{
	static const char *const prefixes[] = {"+86", "0086", "86"};
	text	   *value = PG_GETARG_TEXT_PP(0);
	const char *s = VARDATA_ANY(value);
	int			len = VARSIZE_ANY_EXHDR(value);
	const char *end = s + len;
	const char *body = NULL;
	const char *p;
	int			first_hidden,
				last_hidden;
	int			digit_index;
	MaskBuf		b;

	if (is_cn_mobile_body(s, end))
		body = s;
	else
	{
		for (int i = 0; i < lengthof(prefixes) && body == NULL; i++)
		{
			int			plen = strlen(prefixes[i]);

			if (len > plen && memcmp(s, prefixes[i], plen) == 0)
			{
				p = s + plen;
				if (*p == ' ' || *p == '-')
					p++;
				if (is_cn_mobile_body(p, end))
					body = p;
			}
		}
	}

	if (body != NULL)
	{
		/* digits 4 to 7 of the 11 */
		first_hidden = 3;
		last_hidden = 6;
	}
	else
	{
		int			digits = 0;
		int			d;

		/* every digit but the last 4; every digit when there are <= 4 */
		body = s;
		for (p = s; p < end; p += char_len(p, end))
			if (is_any_digit(p, char_len(p, end), &d))
				digits++;
		first_hidden = 0;
		last_hidden = digits > 4 ? digits - 5 : digits - 1;
	}

	maskbuf_init(&b, len);
	maskbuf_put(&b, s, body - s);
	digit_index = 0;
	for (p = body; p < end;)
	{
		int			l = char_len(p, end);
		int			d;

		if (is_any_digit(p, l, &d))
		{
			if (digit_index >= first_hidden && digit_index <= last_hidden)
				*b.w++ = '*';
			else
				maskbuf_put(&b, p, l);
			digit_index++;
		}
		else
			maskbuf_put(&b, p, l);
		p += l;
	}
	PG_RETURN_TEXT_P(maskbuf_finish(&b));
}

/*
 * mask_cn_id(value text): resident identity numbers (GB 11643):
 * 110105********0021 (18 characters), 110105******002 (15 digits).
 */
Datum
licdata_mask_cn_id(PG_FUNCTION_ARGS)
{
	text	   *value = PG_GETARG_TEXT_PP(0);
	const char *s = VARDATA_ANY(value);
	int			len = VARSIZE_ANY_EXHDR(value);
	bool		digits = true;
	int64		n;
	int			i;

	for (i = 0; i < len && i < 17; i++)
		if (s[i] < '0' || s[i] > '9')
			digits = false;

	if (digits && len == 18 &&
		((s[17] >= '0' && s[17] <= '9') || s[17] == 'X' || s[17] == 'x'))
		PG_RETURN_TEXT_P(partial_core(s, len, 6, 4, "*", 1));
	if (digits && len == 15)
		PG_RETURN_TEXT_P(partial_core(s, len, 6, 3, "*", 1));

	/* another shape: keep the first and last quarter */
	n = pg_mbstrlen_with_len(s, len);
	PG_RETURN_TEXT_P(partial_core(s, len, n / 4, n / 4, "*", 1));
}

/* Is the first character of [s, end) a Latin letter or other ASCII? */
static bool
starts_latin(const char *s, const char *end)
{
	if ((unsigned char) s[0] < 0x80)
		return true;
	if (GetDatabaseEncoding() == PG_UTF8 && char_len(s, end) == 2)
		return utf8_to_unicode((const unsigned char *) s) < 0x250;
	return false;
}

/*
 * mask_cn_name(value text): 张**, 欧阳**, Zhang ***
 */
Datum
licdata_mask_cn_name(PG_FUNCTION_ARGS)
{
	text	   *value = PG_GETARG_TEXT_PP(0);
	const char *s = VARDATA_ANY(value);
	int			len = VARSIZE_ANY_EXHDR(value);
	const char *end = s + len;
	const char *p;
	int64		n;
	MaskBuf		b;

	if (len == 0)
		PG_RETURN_TEXT_P(cstring_to_text_with_len("", 0));

	if (starts_latin(s, end))
	{
		const char *word_end = s;
		bool		one_word;

		while (word_end < end && *word_end != ' ' && *word_end != '\t')
			word_end += char_len(word_end, end);
		one_word = (word_end == end);
		if (one_word)
			word_end = s + char_len(s, end);

		maskbuf_init(&b, len);
		maskbuf_put(&b, s, word_end - s);
		for (p = word_end; p < end;)
		{
			int			l = char_len(p, end);

			if (l == 1 && (*p == ' ' || *p == '\t'))
				*b.w++ = *p;
			else
				*b.w++ = '*';
			p += l;
		}
		PG_RETURN_TEXT_P(maskbuf_finish(&b));
	}

	n = pg_mbstrlen_with_len(s, len);
	if (n == 1)
		PG_RETURN_TEXT_P(cstring_to_text_with_len(s, len));
	else
	{
		int64		surname_chars = 1;

		if (GetDatabaseEncoding() == PG_UTF8 && n >= 3)
		{
			for (int i = 0; i < lengthof(compound_surnames); i++)
			{
				const char *cs = compound_surnames[i].name;
				int			slen = compound_surnames[i].bytes;
				int			schars;

				if (slen > len || cs[0] != s[0] || cs[1] != s[1] ||
					memcmp(s, cs, slen) != 0)
					continue;
				schars = pg_mbstrlen_with_len(cs, slen);
				if (schars < n && schars > surname_chars)
					surname_chars = schars;
			}
		}
		PG_RETURN_TEXT_P(partial_core(s, len, surname_chars, 0, "*", 1));
	}
}

/* ----------------------------------------------------------------
 * Keyed methods: whose key
 * ----------------------------------------------------------------
 */

/*
 * The key id of the licensee the session acts for; an error naming the
 * function (signature) and the operator variant (hint) when it acts for
 * none.
 */
static int64
acting_key_id(const char *signature, const char *hint)
{
	int64		key_id;

	if (!licdata_acting_key_id(&key_id))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg(LICDATA_INTERNAL_SCHEMA ".%s can only be called by a licensee", signature),
				 errdetail("It uses the key of the licensee the session acts for, and this session acts for none."),
				 errhint("%s", hint)));
	return key_id;
}

/*
 * The key id of a given licensee role, for the operator variants; errors
 * unless the caller is an operator and the role a registered licensee.
 */
static int64
licensee_key_id(Oid roleid, const char *fname)
{
	const LicdataLicensee *l;

	if (!licdata_role_is_operator(GetUserId()))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for function %s", fname),
				 errdetail("Only superusers and members of %s may compute a given licensee's masked values.",
						   LICDATA_OPERATOR_ROLE)));
	if (licdata_catalog() == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_LD_NOT_READY),
				 errmsg("licdata is not installed in this database"),
				 errhint("Run CREATE EXTENSION licdata.")));
	/* a dropped role's OID: the cache may still list it until it reloads */
	if (!SearchSysCacheExists1(AUTHOID, ObjectIdGetDatum(roleid)))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("role with OID %u does not exist", roleid),
				 errhint("Pass an existing licensee role by name.")));
	l = licdata_licensee_for_role(roleid);
	if (l == NULL)
	{
		char	   *name = GetUserNameFromId(roleid, true);

		if (name != NULL)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("role \"%s\" is not a registered licensee", name),
					 errhint("Register it with licdata.register_licensee, or pass the licensee role itself rather than one of its members.")));
		else
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("role with OID %u does not exist", roleid)));
	}
	return l->key_id;
}

/* ----------------------------------------------------------------
 * pseudonym
 * ----------------------------------------------------------------
 */

static text *
pseudonym_core(text *value, int32 length, int64 key_id)
{
	uint8		digest[LICDATA_KEYED_HASH_BYTES];
	text	   *result;
	char	   *w;
	int			bits;

	StaticAssertStmt(PSEUDONYM_MAX_LENGTH * 5 <= LICDATA_KEYED_HASH_BYTES * 8,
					 "digest long enough for the longest pseudonym");

	licdata_keyed_hash(key_id, LICDATA_KEY_PSEUDONYM,
					   VARDATA_ANY(value), VARSIZE_ANY_EXHDR(value),
					   digest, LICDATA_KEYED_HASH_BYTES);

	result = (text *) palloc(VARHDRSZ + length);
	SET_VARSIZE(result, VARHDRSZ + length);
	w = VARDATA(result);
	/*
	 * base32, most significant bits first: 5 bytes make 8 characters; the
	 * digest (40 bytes) holds the 64 characters of the longest pseudonym.
	 */
	bits = 0;
	for (int i = 0; i < length; i += 8, bits += 40)
	{
		const uint8 *d = digest + bits / 8;
		uint64		group = ((uint64) d[0] << 32) | ((uint64) d[1] << 24) |
			((uint64) d[2] << 16) | ((uint64) d[3] << 8) | (uint64) d[4];
		int			n = Min(8, length - i);

		for (int j = 0; j < n; j++)
			w[i + j] = base32_alphabet[(group >> (35 - 5 * j)) & 0x1F];
	}
	return result;
}

static void
check_pseudonym_length(int32 length)
{
	if (length < PSEUDONYM_MIN_LENGTH || length > PSEUDONYM_MAX_LENGTH)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("pseudonym length must be between %d and %d",
						PSEUDONYM_MIN_LENGTH, PSEUDONYM_MAX_LENGTH),
				 errdetail("A pseudonym is that many base32 characters, 5 bits each."),
				 errhint("Use 16 (80 bits) unless you have a reason to choose otherwise.")));
}

/*
 * mask_pseudonym(value text, length int): keyed with the acting licensee's
 * pseudonym key.
 */
Datum
licdata_mask_pseudonym(PG_FUNCTION_ARGS)
{
	text	   *value;
	int32		length;
	int64		key_id;

	/* not strict in the rewrite's variant (its internal argument is NULL) */
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		PG_RETURN_NULL();
	value = PG_GETARG_TEXT_PP(0);
	length = PG_GETARG_INT32(1);
	check_pseudonym_length(length);
	key_id = acting_key_id("mask_pseudonym(value, length)",
						   "Operators use licdata.mask_pseudonym(value, length, licensee) to compute a licensee's pseudonym.");
	PG_RETURN_TEXT_P(pseudonym_core(value, length, key_id));
}

/* mask_pseudonym(value text, length int, licensee regrole): operators. */
Datum
licdata_mask_pseudonym_for(PG_FUNCTION_ARGS)
{
	text	   *value = PG_GETARG_TEXT_PP(0);
	int32		length = PG_GETARG_INT32(1);
	int64		key_id;

	key_id = licensee_key_id(PG_GETARG_OID(2), "mask_pseudonym");
	check_pseudonym_length(length);
	PG_RETURN_TEXT_P(pseudonym_core(value, length, key_id));
}

/* ----------------------------------------------------------------
 * fpe: FF1 over an alphabet of characters
 * ----------------------------------------------------------------
 */

/*
 * A parsed alphabet: character i (a numeral) is bytes[off[i] .. off[i] +
 * len[i]).  ASCII characters are looked up in a table, others by binary
 * search over their byte sequences packed into a uint32 (server encodings
 * have characters of at most 4 bytes, whose first byte fixes the length,
 * so packing is unambiguous).  Cached in fn_extra, keyed by the alphabet's
 * bytes.
 */
typedef struct FpeAlphabet
{
	int			radix;
	int			max_char_len;
	int			nbytes;
	char	   *bytes;			/* the alphabet text, the cache key */
	int		   *off;
	uint8	   *len;
	int32		ascii[128];		/* numeral or -1 */
	int			nwide;
	uint32	   *wide_code;		/* sorted */
	int32	   *wide_numeral;
} FpeAlphabet;

typedef struct WideChar
{
	uint32		code;
	int32		numeral;
} WideChar;

static int
widechar_cmp(const void *a, const void *b)
{
	uint32		x = ((const WideChar *) a)->code;
	uint32		y = ((const WideChar *) b)->code;

	return (x > y) - (x < y);
}

static inline uint32
pack_char(const char *p, int len)
{
	uint32		code = 0;

	for (int i = 0; i < len; i++)
		code = (code << 8) | (unsigned char) p[i];
	return code;
}

/* Numeral of the character at p (length len), or -1. */
static inline int32
alphabet_lookup(const FpeAlphabet *a, const char *p, int len)
{
	uint32		code;
	int			lo,
				hi;

	if (len == 1 && (unsigned char) p[0] < 128)
		return a->ascii[(unsigned char) p[0]];
	code = pack_char(p, len);
	lo = 0;
	hi = a->nwide - 1;
	while (lo <= hi)
	{
		int			mid = (lo + hi) / 2;

		if (a->wide_code[mid] == code)
			return a->wide_numeral[mid];
		if (a->wide_code[mid] < code)
			lo = mid + 1;
		else
			hi = mid - 1;
	}
	return -1;
}

/*
 * Parse and check an alphabet, in memory context cxt.  Errors: fewer than
 * 2 or more than 65536 characters, or a repeated character.
 */
static FpeAlphabet *
alphabet_parse(const char *s, int nbytes, MemoryContext cxt)
{
	const char *end = s + nbytes;
	int			n = pg_mbstrlen_with_len(s, nbytes);
	MemoryContext old;
	FpeAlphabet *a;
	WideChar   *wide;
	const char *p;
	bool		duplicate = false;
	int			i;

	if (n < LICDATA_FF1_MIN_RADIX || n > LICDATA_FF1_MAX_RADIX)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("alphabet must have between %d and %d characters",
						LICDATA_FF1_MIN_RADIX, LICDATA_FF1_MAX_RADIX),
				 errhint("Use for example '0123456789' for digits or '0123456789abcdefghijklmnopqrstuvwxyz' for lower-case alphanumerics.")));

	old = MemoryContextSwitchTo(cxt);
	a = palloc0(sizeof(FpeAlphabet));
	a->radix = n;
	a->nbytes = nbytes;
	a->bytes = palloc(nbytes + 1);
	memcpy(a->bytes, s, nbytes);
	a->off = palloc(n * sizeof(int));
	a->len = palloc(n * sizeof(uint8));
	for (i = 0; i < 128; i++)
		a->ascii[i] = -1;
	wide = palloc(n * sizeof(WideChar));

	for (p = s, i = 0; p < end && !duplicate; i++)
	{
		int			l = char_len(p, end);

		a->off[i] = p - s;
		a->len[i] = (uint8) l;
		a->max_char_len = Max(a->max_char_len, l);
		if (l == 1 && (unsigned char) *p < 128)
		{
			if (a->ascii[(unsigned char) *p] >= 0)
				duplicate = true;
			a->ascii[(unsigned char) *p] = i;
		}
		else
		{
			wide[a->nwide].code = pack_char(p, l);
			wide[a->nwide].numeral = i;
			a->nwide++;
		}
		p += l;
	}
	if (a->nwide > 1)
	{
		qsort(wide, a->nwide, sizeof(WideChar), widechar_cmp);
		for (i = 1; i < a->nwide; i++)
			if (wide[i].code == wide[i - 1].code)
				duplicate = true;
	}
	a->wide_code = palloc(Max(a->nwide, 1) * sizeof(uint32));
	a->wide_numeral = palloc(Max(a->nwide, 1) * sizeof(int32));
	for (i = 0; i < a->nwide; i++)
	{
		a->wide_code[i] = wide[i].code;
		a->wide_numeral[i] = wide[i].numeral;
	}
	pfree(wide);
	MemoryContextSwitchTo(old);

	if (duplicate)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("alphabet must not repeat a character"),
				 errdetail("Each character of the alphabet stands for one numeral.")));
	return a;
}

/* The alphabet for this call site: cached in fn_extra while it is the same. */
static FpeAlphabet *
alphabet_cached(FunctionCallInfo fcinfo, text *alphabet)
{
	FpeAlphabet *a = (FpeAlphabet *) fcinfo->flinfo->fn_extra;
	const char *s = VARDATA_ANY(alphabet);
	int			nbytes = VARSIZE_ANY_EXHDR(alphabet);

	if (a != NULL && a->nbytes == nbytes && memcmp(a->bytes, s, nbytes) == 0)
		return a;
	a = alphabet_parse(s, nbytes, fcinfo->flinfo->fn_mcxt);
	fcinfo->flinfo->fn_extra = a;
	return a;
}

static void
fpe_at_exit(int code, Datum arg)
{
	licdata_ff1_free();
	fpe_keyed = false;
}

/* Report a failure of ff1.c as an error. */
static void
fpe_report(LicdataFF1Status status, const FpeAlphabet *a)
{
	switch (status)
	{
		case LICDATA_FF1_OK:
			return;
		case LICDATA_FF1_TOO_SHORT:
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("value too short for format-preserving encryption"),
					 errdetail("With an alphabet of %d characters, FF1 needs at least %d characters of the alphabet in a value (radix^length of at least one million).",
							   a->radix, licdata_ff1_min_length(a->radix)),
					 errhint("Use a larger alphabet, or another method such as pseudonym for this column.")));
			break;
		case LICDATA_FF1_TOO_LONG:
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("value too long for format-preserving encryption"),
					 errdetail("At most %d characters of the alphabet are encrypted per value.",
							   LICDATA_FF1_MAX_LEN),
					 errhint("Use another method such as pseudonym for this column.")));
			break;
		default:
			ereport(ERROR,
					(errcode(ERRCODE_INTERNAL_ERROR),
					 errmsg("format-preserving encryption failed: %s",
							licdata_ff1_status_message(status))));
	}
}

/* Load the licensee's FPE key into ff1.c's cipher unless it is there. */
static void
fpe_use_licensee_key(int64 key_id)
{
	uint64		epoch = licdata_keys_epoch();
	LicdataFF1Status status;

	if (fpe_keyed && fpe_key_id == key_id && fpe_key_epoch == epoch)
		return;
	if (!fpe_exit_registered)
	{
		on_proc_exit(fpe_at_exit, (Datum) 0);
		fpe_exit_registered = true;
	}
	fpe_keyed = false;
	status = licdata_ff1_set_key(licdata_licensee_key(key_id, LICDATA_KEY_FPE),
								 LICDATA_KEY_BYTES);
	fpe_report(status, NULL);
	fpe_keyed = true;
	fpe_key_id = key_id;
	fpe_key_epoch = epoch;
}

/*
 * Encrypt or decrypt the alphabet characters of value with the key loaded
 * in ff1.c (the caller loads it), leaving other characters in place.  strict_alphabet: every
 * character must be in the alphabet (for the test function).
 */
static text *
fpe_core(text *value, const FpeAlphabet *a, const uint8 *tweak, int tweaklen,
		 bool decrypt, bool strict_alphabet)
{
	const char *s = VARDATA_ANY(value);
	int			len = VARSIZE_ANY_EXHDR(value);
	const char *end = s + len;
	const char *p;
	uint16		numerals_buf[64];
	uint16	   *numerals = numerals_buf;
	int			count = 0;
	int			k;
	LicdataFF1Status status;
	MaskBuf		b;

	/* numerals of the alphabet characters, in order */
	if (len > lengthof(numerals_buf))
		numerals = palloc(len * sizeof(uint16));
	for (p = s; p < end;)
	{
		int			l = char_len(p, end);
		int32		numeral = alphabet_lookup(a, p, l);

		if (numeral >= 0)
			numerals[count++] = (uint16) numeral;
		else if (strict_alphabet)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("input contains a character outside the alphabet of radix %d",
							a->radix)));
		p += l;
	}
	if (count == 0 && !strict_alphabet)
		return cstring_to_text_with_len(s, len);

	status = licdata_ff1_crypt(a->radix, tweak, tweaklen, numerals, count,
							   numerals, decrypt);
	fpe_report(status, a);

	maskbuf_init(&b, (int64) len + (int64) count * a->max_char_len);
	k = 0;
	for (p = s; p < end;)
	{
		int			l = char_len(p, end);

		if (alphabet_lookup(a, p, l) >= 0)
		{
			int			numeral = numerals[k++];

			maskbuf_put(&b, a->bytes + a->off[numeral], a->len[numeral]);
		}
		else
			maskbuf_put(&b, p, l);
		p += l;
	}
	if (numerals != numerals_buf)
		pfree(numerals);
	return maskbuf_finish(&b);
}

/* mask_fpe(value text, alphabet text): the acting licensee's FPE key. */
Datum
licdata_mask_fpe(PG_FUNCTION_ARGS)
{
	text	   *value;
	FpeAlphabet *a;
	int64		key_id;

	/* not strict in the rewrite's variant (its internal argument is NULL) */
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		PG_RETURN_NULL();
	value = PG_GETARG_TEXT_PP(0);
	a = alphabet_cached(fcinfo, PG_GETARG_TEXT_PP(1));
	key_id = acting_key_id("mask_fpe(value, alphabet)",
						   "Operators use licdata.mask_fpe(value, alphabet, licensee) to compute a licensee's encrypted value.");
	fpe_use_licensee_key(key_id);
	PG_RETURN_TEXT_P(fpe_core(value, a, NULL, 0, false, false));
}

/* mask_fpe(value text, alphabet text, licensee regrole): operators. */
Datum
licdata_mask_fpe_for(PG_FUNCTION_ARGS)
{
	text	   *value = PG_GETARG_TEXT_PP(0);
	int64		key_id = licensee_key_id(PG_GETARG_OID(2), "mask_fpe");
	FpeAlphabet *a = alphabet_cached(fcinfo, PG_GETARG_TEXT_PP(1));

	fpe_use_licensee_key(key_id);
	PG_RETURN_TEXT_P(fpe_core(value, a, NULL, 0, false, false));
}

/* unmask_fpe(value text, licensee regrole, alphabet text): operators. */
Datum
licdata_unmask_fpe(PG_FUNCTION_ARGS)
{
	text	   *value = PG_GETARG_TEXT_PP(0);
	int64		key_id = licensee_key_id(PG_GETARG_OID(1), "unmask_fpe");
	FpeAlphabet *a = alphabet_cached(fcinfo, PG_GETARG_TEXT_PP(2));

	fpe_use_licensee_key(key_id);
	PG_RETURN_TEXT_P(fpe_core(value, a, NULL, 0, true, false));
}

/*
 * _ff1_test(key bytea, tweak bytea, radix int, input text, decrypt bool):
 * FF1 with a given AES key (16, 24 or 32 bytes) and tweak over the first
 * radix characters of 0-9a-z, for the NIST sample vectors.  Superusers
 * only (REVOKEd from PUBLIC).
 */
Datum
licdata_ff1_test(PG_FUNCTION_ARGS)
{
	bytea	   *key = PG_GETARG_BYTEA_PP(0);
	bytea	   *tweak = PG_GETARG_BYTEA_PP(1);
	int32		radix = PG_GETARG_INT32(2);
	text	   *input = PG_GETARG_TEXT_PP(3);
	bool		decrypt = PG_GETARG_BOOL(4);
	FpeAlphabet *a;
	LicdataFF1Status status;
	text	   *result;

	if (radix < 2 || radix > (int32) strlen(ff1_test_alphabet))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("radix must be between 2 and %d", (int) strlen(ff1_test_alphabet))));
	if (VARSIZE_ANY_EXHDR(tweak) > LICDATA_FF1_MAX_TWEAK)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("tweak must not be longer than %d bytes", LICDATA_FF1_MAX_TWEAK)));
	a = alphabet_parse(ff1_test_alphabet, radix, CurrentMemoryContext);

	if (!fpe_exit_registered)
	{
		on_proc_exit(fpe_at_exit, (Datum) 0);
		fpe_exit_registered = true;
	}
	fpe_keyed = false;			/* the cipher no longer holds a licensee key */
	status = licdata_ff1_set_key((const uint8 *) VARDATA_ANY(key), VARSIZE_ANY_EXHDR(key));
	if (status == LICDATA_FF1_BAD_KEY)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("key must be 16, 24 or 32 bytes long")));
	fpe_report(status, a);

	result = fpe_core(input, a, (const uint8 *) VARDATA_ANY(tweak),
					  VARSIZE_ANY_EXHDR(tweak), decrypt, true);
	PG_RETURN_TEXT_P(result);
}

/* ----------------------------------------------------------------
 * date_trunc
 * ----------------------------------------------------------------
 */

typedef enum TruncUnit
{
	TRUNC_YEAR,
	TRUNC_QUARTER,
	TRUNC_MONTH,
	TRUNC_WEEK,
	TRUNC_DAY,
	TRUNC_HOUR
} TruncUnit;

static const char *const trunc_unit_names[] = {
	"year", "quarter", "month", "week", "day", "hour"
};

/* The unit named by a text argument (case-insensitive), or an error. */
static TruncUnit
trunc_unit(text *unit)
{
	char	   *name = text_to_cstring(unit);

	for (int i = 0; i < lengthof(trunc_unit_names); i++)
		if (pg_strcasecmp(name, trunc_unit_names[i]) == 0)
			return (TruncUnit) i;
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("date_trunc mask unit \"%s\" is not supported", name),
			 errhint("Use one of year, quarter, month, week, day or hour.")));
	return TRUNC_DAY;			/* keep the compiler quiet */
}

/*
 * mask_date_trunc(date, unit): computed on the Julian day so every date,
 * including those beyond the range of timestamp, works.  Weeks start on
 * Monday (ISO 8601), as in date_trunc.  day and hour leave a date as is.
 */
Datum
licdata_mask_date_trunc_date(PG_FUNCTION_ARGS)
{
	DateADT		d = PG_GETARG_DATEADT(0);
	TruncUnit	unit = trunc_unit(PG_GETARG_TEXT_PP(1));
	int			jd,
				year,
				month,
				day;

	if (DATE_NOT_FINITE(d))
		PG_RETURN_DATEADT(d);

	jd = d + POSTGRES_EPOCH_JDATE;
	j2date(jd, &year, &month, &day);
	switch (unit)
	{
		case TRUNC_YEAR:
			jd = date2j(year, 1, 1);
			break;
		case TRUNC_QUARTER:
			jd = date2j(year, ((month - 1) / 3) * 3 + 1, 1);
			break;
		case TRUNC_MONTH:
			jd = date2j(year, month, 1);
			break;
		case TRUNC_WEEK:
			/* j2day: 0 = Sunday; back to Monday */
			jd -= (j2day(jd) + 6) % 7;
			break;
		case TRUNC_DAY:
		case TRUNC_HOUR:
			break;
	}
	d = jd - POSTGRES_EPOCH_JDATE;
	/* a week start before the first valid date */
	if (!IS_VALID_DATE(d))
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("date out of range")));
	PG_RETURN_DATEADT(d);
}

/* mask_date_trunc(timestamp, unit): PostgreSQL's date_trunc. */
Datum
licdata_mask_date_trunc_ts(PG_FUNCTION_ARGS)
{
	Timestamp	ts = PG_GETARG_TIMESTAMP(0);
	TruncUnit	unit = trunc_unit(PG_GETARG_TEXT_PP(1));

	if (TIMESTAMP_NOT_FINITE(ts))
		PG_RETURN_TIMESTAMP(ts);
	return DirectFunctionCall2(timestamp_trunc,
							   PointerGetDatum(cstring_to_text(trunc_unit_names[unit])),
							   TimestampGetDatum(ts));
}

/* mask_date_trunc(timestamptz, unit): date_trunc in the session's time zone. */
Datum
licdata_mask_date_trunc_tstz(PG_FUNCTION_ARGS)
{
	TimestampTz ts = PG_GETARG_TIMESTAMPTZ(0);
	TruncUnit	unit = trunc_unit(PG_GETARG_TEXT_PP(1));

	if (TIMESTAMP_NOT_FINITE(ts))
		PG_RETURN_TIMESTAMPTZ(ts);
	return DirectFunctionCall2(timestamptz_trunc,
							   PointerGetDatum(cstring_to_text(trunc_unit_names[unit])),
							   TimestampTzGetDatum(ts));
}

/* ----------------------------------------------------------------
 * bucket: floor(value / width) * width
 * ----------------------------------------------------------------
 */

static void bucket_width_error(void) pg_attribute_noreturn();

static void
bucket_width_error(void)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("bucket width must be a finite number greater than zero")));
}

/* Lower bound of value's bucket; false on overflow.  width > 0. */
static bool
bucket_int64(int64 value, int64 width, int64 *result)
{
	int64		q = value / width;

	if (value % width != 0 && value < 0)
		q--;
	return !pg_mul_s64_overflow(q, width, result);
}

Datum
licdata_mask_bucket_int2(PG_FUNCTION_ARGS)
{
	int16		value = PG_GETARG_INT16(0);
	int16		width = PG_GETARG_INT16(1);
	int64		r;

	if (width <= 0)
		bucket_width_error();
	if (!bucket_int64(value, width, &r) || r < PG_INT16_MIN)
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("smallint out of range")));
	PG_RETURN_INT16((int16) r);
}

Datum
licdata_mask_bucket_int4(PG_FUNCTION_ARGS)
{
	int32		value = PG_GETARG_INT32(0);
	int32		width = PG_GETARG_INT32(1);
	int64		r;

	if (width <= 0)
		bucket_width_error();
	if (!bucket_int64(value, width, &r) || r < PG_INT32_MIN)
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("integer out of range")));
	PG_RETURN_INT32((int32) r);
}

Datum
licdata_mask_bucket_int8(PG_FUNCTION_ARGS)
{
	int64		value = PG_GETARG_INT64(0);
	int64		width = PG_GETARG_INT64(1);
	int64		r;

	if (width <= 0)
		bucket_width_error();
	if (!bucket_int64(value, width, &r))
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("bigint out of range")));
	PG_RETURN_INT64(r);
}

/*
 * numeric: exact.  q = trunc(value / width), one less when the remainder
 * is negative; the result has the scale of width.  NaN and infinities are
 * returned as they are.
 */
Datum
licdata_mask_bucket_numeric(PG_FUNCTION_ARGS)
{
	Numeric		value = PG_GETARG_NUMERIC(0);
	Numeric		width = PG_GETARG_NUMERIC(1);
	Datum		zero = NumericGetDatum(int64_to_numeric(0));
	Datum		q,
				r;

	if (numeric_is_nan(width) || numeric_is_inf(width) ||
		!DatumGetBool(DirectFunctionCall2(numeric_gt, NumericGetDatum(width), zero)))
		bucket_width_error();
	if (numeric_is_nan(value) || numeric_is_inf(value))
		PG_RETURN_NUMERIC(value);

	q = DirectFunctionCall2(numeric_div_trunc, NumericGetDatum(value), NumericGetDatum(width));
	r = DirectFunctionCall2(numeric_mod, NumericGetDatum(value), NumericGetDatum(width));
	if (DatumGetBool(DirectFunctionCall2(numeric_lt, r, zero)))
		q = DirectFunctionCall2(numeric_sub, q, NumericGetDatum(int64_to_numeric(1)));
	return DirectFunctionCall2(numeric_mul, q, NumericGetDatum(width));
}

/* float: NaN and infinities are returned as they are; -0 becomes 0. */
static double
bucket_double(double value, double width)
{
	double		q,
				r;

	if (isnan(width) || isinf(width) || !(width > 0))
		bucket_width_error();
	if (isnan(value) || isinf(value))
		return value;
	q = floor(value / width);
	r = q * width;
	if (r > value)				/* value / width rounded up to an integer */
		r = (q - 1) * width;
	if (isinf(r) || isnan(r))
		float_overflow_error();
	if (r == 0)
		r = 0.0;
	return r;
}

Datum
licdata_mask_bucket_float8(PG_FUNCTION_ARGS)
{
	PG_RETURN_FLOAT8(bucket_double(PG_GETARG_FLOAT8(0), PG_GETARG_FLOAT8(1)));
}

Datum
licdata_mask_bucket_float4(PG_FUNCTION_ARGS)
{
	float4		value = PG_GETARG_FLOAT4(0);
	float4		width = PG_GETARG_FLOAT4(1);
	double		r = bucket_double(value, width);

	if (!isinf(value) && isinf((float4) r))
		float_overflow_error();
	PG_RETURN_FLOAT4((float4) r);
}

/* ----------------------------------------------------------------
 * noise: value + u * radius, u in [-1, 1) from a keyed hash of the value
 * ----------------------------------------------------------------
 */

/*
 * Check the relative / absolute arguments (exactly one non-NULL, finite,
 * not negative); *relative says which one was given.
 */
static double
noise_factor(FunctionCallInfo fcinfo, bool *relative)
{
	bool		rel_null = PG_ARGISNULL(1);
	bool		abs_null = PG_ARGISNULL(2);
	double		f;

	if (rel_null == abs_null)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("exactly one of relative and absolute must be given"),
				 errhint("Pass relative => 0.05 for noise of up to 5 %% of the value, or absolute => 100 for noise of up to 100.")));
	*relative = !rel_null;
	f = PG_GETARG_FLOAT8(*relative ? 1 : 2);
	if (isnan(f) || isinf(f) || f < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be a finite number not less than zero",
						*relative ? "relative" : "absolute")));
	return f;
}

/*
 * The uniform number in [-1, 1) for a value: the first 53 bits of the keyed
 * BLAKE2b of a type tag and the value's bytes, under the licensee's noise
 * key.
 */
static double
noise_unit(int64 key_id, char tag, const void *bytes, size_t len)
{
	uint8		buf[1 + 8];
	uint8		h[8];
	uint64		u = 0;

	if (len <= 8)
	{
		buf[0] = (uint8) tag;
		memcpy(buf + 1, bytes, len);
		licdata_keyed_hash(key_id, LICDATA_KEY_NOISE, buf, 1 + len, h, sizeof(h));
	}
	else
	{
		char	   *tmp = palloc(1 + len);

		tmp[0] = tag;
		memcpy(tmp + 1, bytes, len);
		licdata_keyed_hash(key_id, LICDATA_KEY_NOISE, tmp, 1 + len, h, sizeof(h));
		pfree(tmp);
	}
	for (int i = 0; i < 8; i++)
		u = (u << 8) | h[i];
	return ((double) (u >> 11) / 9007199254740992.0) * 2.0 - 1.0;
}

static int64
noise_key_id(void)
{
	return acting_key_id("mask_noise(value, relative, absolute)",
						 "Noise is keyed per licensee: run the query as a role that acts for a licensee.");
}

/* value + rounded noise, saturating at [lo, hi] */
static int64
noise_integer(int64 value, double noise, int64 lo, int64 hi)
{
	double		n = rint(noise);
	int64		delta;
	int64		r;

	if (n >= 9.2e18)
		delta = PG_INT64_MAX;
	else if (n <= -9.2e18)
		delta = PG_INT64_MIN;
	else
		delta = (int64) n;
	if (pg_add_s64_overflow(value, delta, &r))
		r = delta > 0 ? PG_INT64_MAX : PG_INT64_MIN;
	return Max(lo, Min(hi, r));
}

/* Noise for an integer value; relative and f from noise_factor. */
static int64
noise_for_int(int64 value, bool relative, double f, int64 lo, int64 hi)
{
	double		radius = relative ? fabs((double) value) * f : f;
	uint8		bytes[8];
	double		u;

	for (int i = 0; i < 8; i++)
		bytes[i] = (uint8) ((uint64) value >> (8 * i));
	u = noise_unit(noise_key_id(), 'i', bytes, sizeof(bytes));
	return noise_integer(value, u * radius, lo, hi);
}

Datum
licdata_mask_noise_int4(PG_FUNCTION_ARGS)
{
	bool		relative;
	double		f = noise_factor(fcinfo, &relative);

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	PG_RETURN_INT32((int32) noise_for_int(PG_GETARG_INT32(0), relative, f,
										  PG_INT32_MIN, PG_INT32_MAX));
}

Datum
licdata_mask_noise_int8(PG_FUNCTION_ARGS)
{
	bool		relative;
	double		f = noise_factor(fcinfo, &relative);

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	PG_RETURN_INT64(noise_for_int(PG_GETARG_INT64(0), relative, f,
								  PG_INT64_MIN, PG_INT64_MAX));
}

/*
 * numeric: the radius is computed in numeric, the noise rounded to the
 * value's scale, so the result keeps the scale.  The hash input is the
 * normalised value (1.5 and 1.50 get the same noise).
 */
Datum
licdata_mask_noise_numeric(PG_FUNCTION_ARGS)
{
	bool		relative;
	double		f = noise_factor(fcinfo, &relative);
	Numeric		value;
	char	   *norm;
	double		u;
	Datum		radius,
				noise;
	int32		scale;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	value = PG_GETARG_NUMERIC(0);
	if (numeric_is_nan(value) || numeric_is_inf(value))
		PG_RETURN_NUMERIC(value);

	norm = numeric_normalize(value);
	u = noise_unit(noise_key_id(), 'n', norm, strlen(norm));

	radius = DirectFunctionCall1(float8_numeric, Float8GetDatum(f));
	if (relative)
		radius = DirectFunctionCall2(numeric_mul, radius,
									 DirectFunctionCall1(numeric_abs, NumericGetDatum(value)));
	noise = DirectFunctionCall2(numeric_mul, radius,
								DirectFunctionCall1(float8_numeric, Float8GetDatum(u)));
	scale = DatumGetInt32(DirectFunctionCall1(numeric_scale, NumericGetDatum(value)));
	noise = DirectFunctionCall2(numeric_round, noise, Int32GetDatum(scale));
	return DirectFunctionCall2(numeric_add, NumericGetDatum(value), noise);
}

Datum
licdata_mask_noise_float8(PG_FUNCTION_ARGS)
{
	bool		relative;
	double		f = noise_factor(fcinfo, &relative);
	double		value;
	double		radius,
				r;
	uint8		bytes[8];
	uint64		bits;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	value = PG_GETARG_FLOAT8(0);
	if (isnan(value) || isinf(value))
		PG_RETURN_FLOAT8(value);
	if (value == 0)
		value = 0.0;			/* -0 and 0 get the same noise */

	memcpy(&bits, &value, sizeof(bits));
	for (int i = 0; i < 8; i++)
		bytes[i] = (uint8) (bits >> (8 * i));
	radius = relative ? fabs(value) * f : f;
	r = value + noise_unit(noise_key_id(), 'f', bytes, sizeof(bytes)) * radius;
	if (isnan(r))
		r = value;
	else if (r > DBL_MAX)
		r = DBL_MAX;
	else if (r < -DBL_MAX)
		r = -DBL_MAX;
	PG_RETURN_FLOAT8(r);
}

/* ----------------------------------------------------------------
 * function: an operator's own function of the value
 * ----------------------------------------------------------------
 */

typedef struct MaskFunctionCache
{
	Oid			funcoid;
	Oid			argtype;
	bool		strict;
	FmgrInfo	flinfo;
} MaskFunctionCache;

/*
 * mask_function(value anyelement, name regproc): name(value), after
 * checking that the function takes and returns value's type, returns one
 * value, and may be executed by the caller.  Checked once per call site
 * and function.
 */
Datum
licdata_mask_function(PG_FUNCTION_ARGS)
{
	MaskFunctionCache *cache = (MaskFunctionCache *) fcinfo->flinfo->fn_extra;
	Oid			valtype = get_fn_expr_argtype(fcinfo->flinfo, 0);
	Oid			funcoid;
	LOCAL_FCINFO(inner, 1);
	Datum		result;

	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("function name must not be null"),
				 errhint("Pass the function to apply, for example 'myschema.mask_account'::regproc.")));
	funcoid = PG_GETARG_OID(1);
	if (!OidIsValid(valtype))
		ereport(ERROR,
				(errcode(ERRCODE_INDETERMINATE_DATATYPE),
				 errmsg("could not determine the type of the value")));

	if (cache == NULL || cache->funcoid != funcoid || cache->argtype != valtype)
	{
		HeapTuple	tup;
		Form_pg_proc proc;
		AclResult	aclresult;

		tup = SearchSysCache1(PROCOID, ObjectIdGetDatum(funcoid));
		if (!HeapTupleIsValid(tup))
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_FUNCTION),
					 errmsg("function with OID %u does not exist", funcoid)));
		proc = (Form_pg_proc) GETSTRUCT(tup);
		if (proc->prokind != PROKIND_FUNCTION || proc->proretset ||
			proc->pronargs != 1 || proc->proargtypes.values[0] != valtype ||
			proc->prorettype != valtype)
		{
			ReleaseSysCache(tup);
			ereport(ERROR,
					(errcode(ERRCODE_WRONG_OBJECT_TYPE),
					 errmsg("function %s cannot be used as a mask of type %s",
							format_procedure(funcoid), format_type_be(valtype)),
					 errdetail("A mask function takes one argument of the column's type and returns a single value of the same type."),
					 errhint("Write a function %s(%s) RETURNS %s.",
							 get_func_name(funcoid), format_type_be(valtype),
							 format_type_be(valtype))));
		}
		ReleaseSysCache(tup);

		aclresult = pg_proc_aclcheck(funcoid, GetUserId(), ACL_EXECUTE);
		if (aclresult != ACLCHECK_OK)
			aclcheck_error(aclresult, OBJECT_FUNCTION, get_func_name(funcoid));

		cache = MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt, sizeof(MaskFunctionCache));
		fmgr_info_cxt(funcoid, &cache->flinfo, fcinfo->flinfo->fn_mcxt);
		cache->funcoid = funcoid;
		cache->argtype = valtype;
		cache->strict = cache->flinfo.fn_strict;
		fcinfo->flinfo->fn_extra = cache;
	}

	if (PG_ARGISNULL(0) && cache->strict)
		PG_RETURN_NULL();

	InitFunctionCallInfoData(*inner, &cache->flinfo, 1, PG_GET_COLLATION(), NULL, NULL);
	inner->args[0].value = PG_ARGISNULL(0) ? (Datum) 0 : PG_GETARG_DATUM(0);
	inner->args[0].isnull = PG_ARGISNULL(0);
	result = FunctionCallInvoke(inner);
	if (inner->isnull)
		PG_RETURN_NULL();
	PG_RETURN_DATUM(result);
}

/* ----------------------------------------------------------------
 * rotate_master_key
 * ----------------------------------------------------------------
 */

/*
 * rotate_master_key(): operators only.  Every pseudonym, FPE value and
 * noise changes; values encrypted under the old key can no longer be
 * unmasked.  Takes effect immediately, whatever the transaction does.
 */
Datum
licdata_rotate_master_key(PG_FUNCTION_ARGS)
{
	if (!licdata_role_is_operator(GetUserId()))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for function rotate_master_key"),
				 errdetail("Only superusers and members of %s may rotate the master key.",
						   LICDATA_OPERATOR_ROLE)));
	licdata_keys_rotate();
	ereport(LOG,
			(errmsg("licdata master key rotated by role \"%s\"",
					GetUserNameFromId(GetUserId(), false))));
	PG_RETURN_VOID();
}
