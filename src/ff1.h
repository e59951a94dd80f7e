/*-------------------------------------------------------------------------
 *
 * ff1.h
 *	  FF1 format-preserving encryption (NIST SP 800-38G) over AES.
 *
 * The algorithm works on numeral strings: arrays of integers in
 * [0, radix).  Mapping characters to numerals (the alphabet) is the
 * caller's business (see mask.c).  ff1.c is the only file that uses
 * OpenSSL; it never raises a PostgreSQL error and never allocates memory
 * outside OpenSSL's own objects, so it can be tested outside the server.
 *
 * One AES context per backend: licdata_ff1_set_key() loads a key into it,
 * licdata_ff1_free() wipes and frees it (at backend exit).
 *
 *-------------------------------------------------------------------------
 */
#ifndef LICDATA_FF1_H
#define LICDATA_FF1_H

/* Limits of this implementation (FF1 itself allows more). */
#define LICDATA_FF1_MIN_RADIX		2
#define LICDATA_FF1_MAX_RADIX		65536
#define LICDATA_FF1_MAX_LEN			1024	/* numerals per value */
#define LICDATA_FF1_MAX_TWEAK		256 /* bytes */

/* radix^minlen must reach this (SP 800-38G Rev. 1) */
#define LICDATA_FF1_MIN_DOMAIN		1000000

typedef enum LicdataFF1Status
{
	LICDATA_FF1_OK = 0,
	LICDATA_FF1_BAD_RADIX,		/* radix outside [2, 65536] */
	LICDATA_FF1_TOO_SHORT,		/* radix^n below 1,000,000, or n < 2 */
	LICDATA_FF1_TOO_LONG,		/* more than LICDATA_FF1_MAX_LEN numerals */
	LICDATA_FF1_BAD_NUMERAL,	/* a numeral >= radix */
	LICDATA_FF1_BAD_TWEAK,		/* tweak longer than LICDATA_FF1_MAX_TWEAK */
	LICDATA_FF1_BAD_KEY,		/* key length not 16, 24 or 32 bytes */
	LICDATA_FF1_NO_KEY,			/* licdata_ff1_set_key not called */
	LICDATA_FF1_CRYPTO_ERROR	/* OpenSSL failed (out of memory) */
} LicdataFF1Status;

extern int	licdata_ff1_min_length(uint32 radix);
extern LicdataFF1Status licdata_ff1_set_key(const uint8 *key, int keylen);
extern LicdataFF1Status licdata_ff1_crypt(uint32 radix,
										  const uint8 *tweak, int tweaklen,
										  const uint16 *in, int n,
										  uint16 *out, bool decrypt);
extern void licdata_ff1_free(void);
extern const char *licdata_ff1_status_message(LicdataFF1Status status);

/* for tests: force the arbitrary-precision path even for small domains */
extern bool licdata_ff1_force_bignum;

#endif							/* LICDATA_FF1_H */
