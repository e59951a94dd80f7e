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
