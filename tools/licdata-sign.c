/*
 * licdata-sign -- the licensing authority's offline tool: make an Ed25519
 * key pair, and sign licence documents for licdata.install_licence.
 *
 *   licdata-sign keygen SECRET_KEY_FILE
 *       writes a new secret key (base64, mode 0600) and prints the public key
 *       to register with licdata.add_authority(name, public_key)
 *   licdata-sign sign SECRET_KEY_FILE --authority NAME --licensee ROLE --dataset TABLE
 *       --purposes p1[,p2...] [--columns c1,c2...] [--row-filter EXPR]
 *       [--valid-from TS] [--valid-until TS] [--max-rows-per-query N]
 *       [--max-rows-per-day N] [--max-queries-per-day N] [--require-consent-ref]
 *       [--price-per-query X] [--price-per-row X] [--mode rows|aggregate]
 *       [--min-group-size N] [--unlicensed-columns refuse|null]
 *       prints the licence document (line 1) and its signature (line 2)
 *
 * The document is written in PostgreSQL's canonical jsonb text form (keys by
 * length then bytes, ", " and ": " separators, jsonb's string escapes), and
 * the signature covers "licdata-licence-v1\n" followed by exactly that text,
 * which is what the server recomputes from the jsonb it receives.
 *
 * Depends on libsodium only.
 */
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PREFIX "licdata-licence-v1\n"
#define MAXFIELDS 32

typedef enum { V_STRING, V_NUMBER, V_BOOL, V_STRARRAY } VKind;

typedef struct
{
	const char *key;
	VKind		kind;
	const char *value;			/* string, number text, "true", or comma list */
} Field;

static Field fields[MAXFIELDS];
static int	nfields = 0;

static void
die(const char *msg, const char *arg)
{
	fprintf(stderr, "licdata-sign: %s%s%s\n", msg, arg ? ": " : "", arg ? arg : "");
	exit(2);
}

typedef struct
{
	char	   *data;
	size_t		len;
	size_t		cap;
} Buf;

static void
put(Buf *b, const char *str)
{
	size_t		n = strlen(str);

	while (b->len + n + 1 > b->cap)
	{
		b->cap = b->cap * 2 + 64;
		b->data = realloc(b->data, b->cap);
		if (!b->data)
			die("out of memory", NULL);
	}
	memcpy(b->data + b->len, str, n);
	b->len += n;
	b->data[b->len] = '\0';
}

/* Append s as a JSON string, escaped exactly as PostgreSQL's escape_json does. */
static void
put_json_string(Buf *b, const char *s)
{
	put(b, "\"");
	for (const unsigned char *p = (const unsigned char *) s; *p; p++)
	{
		char		tmp[8];

		switch (*p)
		{
			case '\b': put(b, "\\b"); break;
			case '\f': put(b, "\\f"); break;
			case '\n': put(b, "\\n"); break;
			case '\r': put(b, "\\r"); break;
			case '\t': put(b, "\\t"); break;
			case '"': put(b, "\\\""); break;
			case '\\': put(b, "\\\\"); break;
			default:
				if (*p < ' ')
					snprintf(tmp, sizeof(tmp), "\\u%04x", (int) *p);
				else
				{
					tmp[0] = (char) *p;
					tmp[1] = '\0';
				}
				put(b, tmp);
		}
	}
	put(b, "\"");
}

/* jsonb orders object keys by length, then by bytes. */
static int
key_cmp(const void *a, const void *b)
{
	const Field *fa = a;
	const Field *fb = b;
	size_t		la = strlen(fa->key);
	size_t		lb = strlen(fb->key);

	if (la != lb)
		return la < lb ? -1 : 1;
	return memcmp(fa->key, fb->key, la);
}

static char *
canonical_document(void)
{
	Buf			b = {NULL, 0, 0};

	put(&b, "");
	qsort(fields, nfields, sizeof(Field), key_cmp);
	put(&b, "{");
	for (int i = 0; i < nfields; i++)
	{
		if (i > 0)
			put(&b, ", ");
		put_json_string(&b, fields[i].key);
		put(&b, ": ");
		switch (fields[i].kind)
		{
			case V_STRING:
				put_json_string(&b, fields[i].value);
				break;
			case V_NUMBER:
			case V_BOOL:
				put(&b, fields[i].value);
				break;
			case V_STRARRAY:
				{
					char	   *copy = strdup(fields[i].value);
					char	   *save = NULL;
					int			n = 0;

					if (!copy)
						die("out of memory", NULL);
					put(&b, "[");
					for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save))
					{
						if (n++ > 0)
							put(&b, ", ");
						put_json_string(&b, t);
					}
					put(&b, "]");
					free(copy);
				}
				break;
		}
	}
	put(&b, "}");
	return b.data;
}

static void
add(const char *key, VKind kind, const char *value)
{
	if (nfields >= MAXFIELDS)
		die("too many fields", NULL);
	for (int i = 0; i < nfields; i++)
		if (strcmp(fields[i].key, key) == 0)
			die("option given twice", key);
	if (kind == V_NUMBER)
	{
		const char *p = value;

		if (*p == '\0')
			die("not a whole number", value);
		for (; *p; p++)
			if (*p < '0' || *p > '9')
				die("not a whole number", value);
		if (value[0] == '0' && value[1] != '\0')
			die("a number must not start with 0", value);
	}
	fields[nfields].key = key;
	fields[nfields].kind = kind;
	fields[nfields].value = value;
	nfields++;
}

static void
read_secret(const char *path, unsigned char *sk)
{
	char		b64[256];
	size_t		n,
				binlen = 0;
	FILE	   *f = fopen(path, "r");

	if (!f)
		die("could not open the secret key file", strerror(errno));
	n = fread(b64, 1, sizeof(b64) - 1, f);
	fclose(f);
	b64[n] = '\0';
	if (sodium_base642bin(sk, crypto_sign_SECRETKEYBYTES, b64, n, " \t\r\n", &binlen, NULL,
						  sodium_base64_VARIANT_ORIGINAL) != 0 || binlen != crypto_sign_SECRETKEYBYTES)
		die("the secret key file does not hold a base64 Ed25519 secret key", path);
}

static int
keygen(const char *path)
{
	unsigned char pk[crypto_sign_PUBLICKEYBYTES];
	unsigned char sk[crypto_sign_SECRETKEYBYTES];
	char		pk64[sodium_base64_ENCODED_LEN(crypto_sign_PUBLICKEYBYTES, sodium_base64_VARIANT_ORIGINAL)];
	char		sk64[sodium_base64_ENCODED_LEN(crypto_sign_SECRETKEYBYTES, sodium_base64_VARIANT_ORIGINAL)];
	int			fd;

	crypto_sign_keypair(pk, sk);
	sodium_bin2base64(pk64, sizeof(pk64), pk, sizeof(pk), sodium_base64_VARIANT_ORIGINAL);
	sodium_bin2base64(sk64, sizeof(sk64), sk, sizeof(sk), sodium_base64_VARIANT_ORIGINAL);
	sodium_memzero(sk, sizeof(sk));
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	if (fd < 0)
		die("could not create the secret key file (it must not exist yet)", strerror(errno));
	if (write(fd, sk64, strlen(sk64)) != (ssize_t) strlen(sk64) || write(fd, "\n", 1) != 1 ||
		fsync(fd) != 0 || close(fd) != 0)
		die("could not write the secret key file", strerror(errno));
	sodium_memzero(sk64, sizeof(sk64));
	printf("%s\n", pk64);
	return 0;
}

static int
sign(int argc, char **argv)
{
	unsigned char sk[crypto_sign_SECRETKEYBYTES];
	unsigned char sig[crypto_sign_BYTES];
	char		sig64[sodium_base64_ENCODED_LEN(crypto_sign_BYTES, sodium_base64_VARIANT_ORIGINAL)];
	char	   *doc;
	char	   *msg;
	static const struct
	{
		const char *opt;
		const char *key;
		VKind		kind;
	}			opts[] = {
		{"--authority", "authority", V_STRING},
		{"--licensee", "licensee", V_STRING},
		{"--dataset", "dataset", V_STRING},
		{"--purposes", "purposes", V_STRARRAY},
		{"--columns", "columns", V_STRARRAY},
		{"--row-filter", "row_filter", V_STRING},
		{"--valid-from", "valid_from", V_STRING},
		{"--valid-until", "valid_until", V_STRING},
		{"--max-rows-per-query", "max_rows_per_query", V_NUMBER},
		{"--max-rows-per-day", "max_rows_per_day", V_NUMBER},
		{"--max-queries-per-day", "max_queries_per_day", V_NUMBER},
		{"--price-per-query", "price_per_query", V_STRING},
		{"--price-per-row", "price_per_row", V_STRING},
		{"--mode", "mode", V_STRING},
		{"--min-group-size", "min_group_size", V_NUMBER},
		{"--unlicensed-columns", "unlicensed_columns", V_STRING},
		{NULL, NULL, V_STRING}
	};

	read_secret(argv[0], sk);
	for (int i = 1; i < argc; i++)
	{
		int			found = 0;

		if (strcmp(argv[i], "--require-consent-ref") == 0)
		{
			add("require_consent_ref", V_BOOL, "true");
			continue;
		}
		for (int o = 0; opts[o].opt; o++)
		{
			if (strcmp(argv[i], opts[o].opt) == 0)
			{
				if (i + 1 >= argc)
					die("option needs a value", argv[i]);
				add(opts[o].key, opts[o].kind, argv[++i]);
				found = 1;
				break;
			}
		}
		if (!found)
			die("unknown option", argv[i]);
	}
	doc = canonical_document();
	msg = malloc(strlen(PREFIX) + strlen(doc) + 1);
	if (!msg)
		die("out of memory", NULL);
	strcpy(msg, PREFIX);
	strcat(msg, doc);
	crypto_sign_detached(sig, NULL, (unsigned char *) msg, strlen(msg), sk);
	sodium_memzero(sk, sizeof(sk));
	sodium_bin2base64(sig64, sizeof(sig64), sig, sizeof(sig), sodium_base64_VARIANT_ORIGINAL);
	printf("%s\n%s\n", doc, sig64);
	return 0;
}

int
main(int argc, char **argv)
{
	if (sodium_init() < 0)
		die("could not initialise libsodium", NULL);
	if (argc == 3 && strcmp(argv[1], "keygen") == 0)
		return keygen(argv[2]);
	if (argc >= 3 && strcmp(argv[1], "sign") == 0)
		return sign(argc - 2, argv + 2);
	fprintf(stderr,
			"usage: licdata-sign keygen SECRET_KEY_FILE\n"
			"       licdata-sign sign SECRET_KEY_FILE --authority NAME --licensee ROLE --dataset TABLE\n"
			"                    --purposes p1[,p2] [--columns c1,c2] [--row-filter EXPR]\n"
			"                    [--valid-from TS] [--valid-until TS] [--max-rows-per-query N]\n"
			"                    [--max-rows-per-day N] [--max-queries-per-day N] [--require-consent-ref]\n"
			"                    [--price-per-query X] [--price-per-row X] [--mode rows|aggregate]\n"
			"                    [--min-group-size N] [--unlicensed-columns refuse|null]\n");
	return 2;
}
