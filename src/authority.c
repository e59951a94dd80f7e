/*-------------------------------------------------------------------------
 *
 * authority.c
 *	  Signed licences: the licensing authority signs a licence document with
 *	  its Ed25519 key (tools/licdata-sign); licdata.install_licence verifies
 *	  the signature with the authority's public key (libsodium) before the
 *	  licence is granted.
 *
 * What is signed is the document's canonical text: PostgreSQL's own jsonb
 * text form (keys ordered by length, then bytes; ", " and ": " separators),
 * prefixed with "licdata-licence-v1\n".  tools/licdata-sign writes the
 * document in exactly that form, so the bytes it signs are the bytes
 * verified here, however the document travels (whitespace and key order in
 * transit do not matter; any change of content does).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <sodium.h>

#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/elog.h"
#include "utils/jsonb.h"

#include "licdata.h"

#define SIGNED_PREFIX "licdata-licence-v1\n"

static bool
decode_b64(const char *in, unsigned char *out, size_t want)
{
	size_t		len = 0;

	if (sodium_base642bin(out, want, in, strlen(in), " \t\r\n", &len, NULL,
						  sodium_base64_VARIANT_ORIGINAL) != 0)
		return false;
	return len == want;
}

/* licdata._check_public_key(text) RETURNS text: normalised base64, or an error. */
PG_FUNCTION_INFO_V1(licdata_check_public_key);
Datum
licdata_check_public_key(PG_FUNCTION_ARGS)
{
	char	   *in;
	unsigned char pk[crypto_sign_PUBLICKEYBYTES];
	char		out[sodium_base64_ENCODED_LEN(crypto_sign_PUBLICKEYBYTES, sodium_base64_VARIANT_ORIGINAL)];

	if (PG_ARGISNULL(0))
		ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
						errmsg("public_key must not be null")));
	in = text_to_cstring(PG_GETARG_TEXT_PP(0));
	if (sodium_init() < 0)
		elog(ERROR, "could not initialise libsodium");
	if (!decode_b64(in, pk, sizeof(pk)))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("public_key is not a base64 Ed25519 public key"),
				 errdetail("An Ed25519 public key is 32 bytes, 44 characters of standard base64."),
				 errhint("Pass the public key printed by \"licdata-sign keygen\".")));
	sodium_bin2base64(out, sizeof(out), pk, sizeof(pk), sodium_base64_VARIANT_ORIGINAL);
	PG_RETURN_TEXT_P(cstring_to_text(out));
}

/*
 * licdata._verify_document(document jsonb, signature text, public_key text)
 * RETURNS boolean: does the signature match the document's canonical text?
 */
PG_FUNCTION_INFO_V1(licdata_verify_document);
Datum
licdata_verify_document(PG_FUNCTION_ARGS)
{
	Jsonb	   *doc;
	char	   *canon;
	char	   *msg;
	char	   *sig_b64;
	char	   *pk_b64;
	unsigned char sig[crypto_sign_BYTES];
	unsigned char pk[crypto_sign_PUBLICKEYBYTES];

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2))
		ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
						errmsg("document, signature and public key must not be null")));
	doc = PG_GETARG_JSONB_P(0);
	sig_b64 = text_to_cstring(PG_GETARG_TEXT_PP(1));
	pk_b64 = text_to_cstring(PG_GETARG_TEXT_PP(2));
	if (sodium_init() < 0)
		elog(ERROR, "could not initialise libsodium");
	if (!decode_b64(sig_b64, sig, sizeof(sig)))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("signature is not a base64 Ed25519 signature"),
				 errdetail("An Ed25519 signature is 64 bytes, 88 characters of standard base64."),
				 errhint("Pass the signature printed by \"licdata-sign sign\".")));
	if (!decode_b64(pk_b64, pk, sizeof(pk)))
		elog(ERROR, "stored public key of the authority is not valid base64");
	canon = JsonbToCString(NULL, &doc->root, VARSIZE(doc));
	msg = psprintf("%s%s", SIGNED_PREFIX, canon);
	PG_RETURN_BOOL(crypto_sign_verify_detached(sig, (const unsigned char *) msg,
											   strlen(msg), pk) == 0);
}

/* ---- signed audit checkpoints ---- */

#include "keys.h"

extern bool licdata_records_writable;

#define CHECKPOINT_PREFIX "licdata-audit-v1\n"

/* The cluster's audit key pair, from the master key (key id 0). */
static void
audit_keypair(unsigned char *pk, unsigned char *sk)
{
	const uint8 *seed = licdata_licensee_key(0, LICDATA_KEY_AUDIT);

	if (crypto_sign_seed_keypair(pk, sk, seed) != 0)
		elog(ERROR, "could not derive the audit signing key");
}

static char *
checkpoint_message(int64 seq, bytea *hash)
{
	char	   *hex = palloc(VARSIZE_ANY_EXHDR(hash) * 2 + 1);

	hex_encode(VARDATA_ANY(hash), VARSIZE_ANY_EXHDR(hash), hex);
	hex[VARSIZE_ANY_EXHDR(hash) * 2] = '\0';
	return psprintf("%s%lld\n%s", CHECKPOINT_PREFIX, (long long) seq, hex);
}

/* licdata.audit_public_key(): the base64 Ed25519 key checkpoints are signed with. */
PG_FUNCTION_INFO_V1(licdata_audit_public_key);
Datum
licdata_audit_public_key(PG_FUNCTION_ARGS)
{
	unsigned char pk[crypto_sign_PUBLICKEYBYTES];
	unsigned char *sk = sodium_malloc(crypto_sign_SECRETKEYBYTES);
	char		out[sodium_base64_ENCODED_LEN(crypto_sign_PUBLICKEYBYTES, sodium_base64_VARIANT_ORIGINAL)];

	if (!licdata_preloaded)
		ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
						errmsg("licdata is not loaded through shared_preload_libraries")));
	if (sk == NULL)
		elog(ERROR, "out of secure memory");
	audit_keypair(pk, sk);
	sodium_free(sk);
	sodium_bin2base64(out, sizeof(out), pk, sizeof(pk), sodium_base64_VARIANT_ORIGINAL);
	PG_RETURN_TEXT_P(cstring_to_text(out));
}

/*
 * licdata._audit_sign(seq bigint, hash bytea) RETURNS text: signature of a
 * checkpoint.  Only licdata's own writer (the background worker moving
 * records) may sign: anyone else could have any chain state signed.
 */
PG_FUNCTION_INFO_V1(licdata_audit_sign);
Datum
licdata_audit_sign(PG_FUNCTION_ARGS)
{
	unsigned char pk[crypto_sign_PUBLICKEYBYTES];
	unsigned char *sk;
	unsigned char sig[crypto_sign_BYTES];
	char		out[sodium_base64_ENCODED_LEN(crypto_sign_BYTES, sodium_base64_VARIANT_ORIGINAL)];
	char	   *msg;

	if (!licdata_records_writable)
		ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
						errmsg("audit checkpoints are signed only by licdata's background worker")));
	msg = checkpoint_message(PG_GETARG_INT64(0), PG_GETARG_BYTEA_PP(1));
	sk = sodium_malloc(crypto_sign_SECRETKEYBYTES);
	if (sk == NULL)
		elog(ERROR, "out of secure memory");
	audit_keypair(pk, sk);
	crypto_sign_detached(sig, NULL, (const unsigned char *) msg, strlen(msg), sk);
	sodium_free(sk);
	sodium_bin2base64(out, sizeof(out), sig, sizeof(sig), sodium_base64_VARIANT_ORIGINAL);
	PG_RETURN_TEXT_P(cstring_to_text(out));
}

/* licdata._audit_verify(seq, hash, signature, public_key) RETURNS boolean */
PG_FUNCTION_INFO_V1(licdata_audit_verify);
Datum
licdata_audit_verify(PG_FUNCTION_ARGS)
{
	char	   *msg = checkpoint_message(PG_GETARG_INT64(0), PG_GETARG_BYTEA_PP(1));
	unsigned char sig[crypto_sign_BYTES];
	unsigned char pk[crypto_sign_PUBLICKEYBYTES];

	if (sodium_init() < 0)
		elog(ERROR, "could not initialise libsodium");
	if (!decode_b64(text_to_cstring(PG_GETARG_TEXT_PP(2)), sig, sizeof(sig)) ||
		!decode_b64(text_to_cstring(PG_GETARG_TEXT_PP(3)), pk, sizeof(pk)))
		PG_RETURN_BOOL(false);
	PG_RETURN_BOOL(crypto_sign_verify_detached(sig, (const unsigned char *) msg, strlen(msg), pk) == 0);
}
