/*-------------------------------------------------------------------------
 *
 * ff1.c
 *	  FF1 format-preserving encryption (NIST SP 800-38G, Rev. 1) over AES,
 *	  with OpenSSL's EVP interface.
 *
 * FF1 is a ten-round Feistel network over a numeral string X of n numerals
 * in radix r, split into A (the first u = floor(n/2) numerals) and B (the
 * other v = n - u).  Each round encrypts NUM_r(B) together with the round
 * number, the tweak and the parameters with a CBC-MAC of AES (the PRF),
 * stretches the result to d bytes, and adds it modulo r^m to NUM_r(A).
 *
 * Invariants and choices:
 *	- One EVP_CIPHER_CTX per backend (AES-128/192/256 in ECB mode, no
 *	  padding), keyed by licdata_ff1_set_key() and freed, with its key
 *	  schedule wiped by OpenSSL, by licdata_ff1_free().  The CBC-MAC is
 *	  chained here block by block over ECB, as SP 800-38G writes it.
 *	- The halves A and B are held as numbers, not numeral strings: a round
 *	  only needs NUM_r(B) and NUM_r(A), and the lengths of A and B are
 *	  again u and v after the ten rounds, so the numbers are turned into
 *	  numerals once at the end.
 *	- When r^v < 2^32 (b <= 4 bytes, d = 8) the numbers fit in uint64 and
 *	  no arbitrary-precision arithmetic is needed: the common case of
 *	  ID numbers, phone numbers, card numbers.  Otherwise OpenSSL BIGNUMs
 *	  from one BN_CTX per backend.  Both paths are checked against the NIST
 *	  samples and against each other (licdata_ff1_force_bignum).
 *	- b = ceil(ceil(v * log2(r)) / 8) is computed exactly as the byte length
 *	  of the bit length of r^v - 1, not with floating point.
 *	- Nothing here raises a PostgreSQL error or uses palloc: errors come
 *	  back as LicdataFF1Status, and the caller (mask.c) reports them.
 *	  Work buffers are on the stack, sized by the limits in ff1.h, and
 *	  wiped before returning.
 *	- Timing depends on the value (BIGNUM arithmetic is not constant
 *	  time); masking does not claim otherwise.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "ff1.h"

#define AES_BLOCK	16
#define FF1_ROUNDS	10

/* Largest b (bytes of NUM_r(B)) and d (bytes of S) within our limits. */
#define FF1_MAX_B	((LICDATA_FF1_MAX_LEN / 2 + 1) * 2 + 1)
#define FF1_MAX_D	(4 * ((FF1_MAX_B + 3) / 4) + 4)
#define FF1_MAX_Q	(LICDATA_FF1_MAX_TWEAK + AES_BLOCK + 1 + FF1_MAX_B)
#define FF1_MAX_S	(((FF1_MAX_D + AES_BLOCK - 1) / AES_BLOCK) * AES_BLOCK)

bool		licdata_ff1_force_bignum = false;

static EVP_CIPHER_CTX *ff1_ctx = NULL;
static bool ff1_have_key = false;
static BN_CTX *ff1_bn = NULL;

/*
 * Smallest numeral-string length allowed for a radix: radix^len must be at
 * least 1,000,000, and FF1 needs at least two numerals.
 */
int
licdata_ff1_min_length(uint32 radix)
{
	uint64		domain = radix;
	int			len = 1;

	if (radix < 2)
		return INT_MAX;
	while (domain < LICDATA_FF1_MIN_DOMAIN)
	{
		domain *= radix;
		len++;
	}
	return Max(len, 2);
}

/*
 * Load an AES key (16, 24 or 32 bytes) into the backend's cipher context.
 * OpenSSL copies the key into its own key schedule; the caller wipes its
 * copy.
 */
LicdataFF1Status
licdata_ff1_set_key(const uint8 *key, int keylen)
{
	const EVP_CIPHER *cipher;

	switch (keylen)
	{
		case 16:
			cipher = EVP_aes_128_ecb();
			break;
		case 24:
			cipher = EVP_aes_192_ecb();
			break;
		case 32:
			cipher = EVP_aes_256_ecb();
			break;
		default:
			return LICDATA_FF1_BAD_KEY;
	}
	if (ff1_ctx == NULL)
	{
		ff1_ctx = EVP_CIPHER_CTX_new();
		if (ff1_ctx == NULL)
			return LICDATA_FF1_CRYPTO_ERROR;
	}
	ff1_have_key = false;
	if (EVP_EncryptInit_ex(ff1_ctx, cipher, NULL, key, NULL) != 1)
		return LICDATA_FF1_CRYPTO_ERROR;
	EVP_CIPHER_CTX_set_padding(ff1_ctx, 0);
	ff1_have_key = true;
	return LICDATA_FF1_OK;
}

/* Free the cipher context (OpenSSL wipes the key schedule) and the BN_CTX. */
void
licdata_ff1_free(void)
{
	if (ff1_ctx != NULL)
		EVP_CIPHER_CTX_free(ff1_ctx);
	ff1_ctx = NULL;
	ff1_have_key = false;
	if (ff1_bn != NULL)
		BN_CTX_free(ff1_bn);
	ff1_bn = NULL;
}

/* A sentence for each status, for the caller's error messages. */
const char *
licdata_ff1_status_message(LicdataFF1Status status)
{
	switch (status)
	{
		case LICDATA_FF1_OK:
			return "success";
		case LICDATA_FF1_BAD_RADIX:
			return "radix out of range";
		case LICDATA_FF1_TOO_SHORT:
			return "value too short";
		case LICDATA_FF1_TOO_LONG:
			return "value too long";
		case LICDATA_FF1_BAD_NUMERAL:
			return "numeral out of range";
		case LICDATA_FF1_BAD_TWEAK:
			return "tweak too long";
		case LICDATA_FF1_BAD_KEY:
			return "key length not 16, 24 or 32 bytes";
		case LICDATA_FF1_NO_KEY:
			return "no key loaded";
		case LICDATA_FF1_CRYPTO_ERROR:
			return "cryptographic library failure";
	}
	return "unknown status";
}

/* Encrypt nblocks independent 16-byte blocks (ECB). */
static bool
aes_blocks(const uint8 *in, uint8 *out, int nblocks)
{
	int			outl = 0;

	if (EVP_EncryptUpdate(ff1_ctx, out, &outl, in, nblocks * AES_BLOCK) != 1)
		return false;
	return outl == nblocks * AES_BLOCK;
}

/*
 * The round function: R = PRF(P || Q) as a CBC-MAC with a zero IV, where
 * cbc_p = CIPH(P) is the first block already encrypted (it is the same in
 * every round), then S = R || CIPH(R xor [1]) || CIPH(R xor [2]) ...,
 * of which the first d bytes are used.  S must hold ceil(d/16) blocks.
 */
static bool
ff1_round_bytes(const uint8 *cbc_p, const uint8 *q, int qlen, int d, uint8 *s)
{
	uint8		y[AES_BLOCK];
	uint8		x[AES_BLOCK];
	int			nblocks = (d + AES_BLOCK - 1) / AES_BLOCK;
	int			off;
	int			j;

	memcpy(y, cbc_p, AES_BLOCK);
	for (off = 0; off < qlen; off += AES_BLOCK)
	{
		for (j = 0; j < AES_BLOCK; j++)
			x[j] = y[j] ^ q[off + j];
		if (!aes_blocks(x, y, 1))
			return false;
	}
	memcpy(s, y, AES_BLOCK);
	if (nblocks > 1)
	{
		/* s[16*j ...] = R xor [j]^16, then encrypt blocks 1.. in one call */
		for (j = 1; j < nblocks; j++)
		{
			uint8	   *blk = s + j * AES_BLOCK;

			memcpy(blk, y, AES_BLOCK);
			blk[12] ^= (uint8) ((uint32) j >> 24);
			blk[13] ^= (uint8) ((uint32) j >> 16);
			blk[14] ^= (uint8) ((uint32) j >> 8);
			blk[15] ^= (uint8) j;
		}
		if (!aes_blocks(s + AES_BLOCK, s + AES_BLOCK, nblocks - 1))
			return false;
	}
	OPENSSL_cleanse(x, sizeof(x));
	OPENSSL_cleanse(y, sizeof(y));
	return true;
}

/* NUM_r of a numeral string, into a BIGNUM (digits grouped per word op). */
static bool
bn_from_numerals(BIGNUM *bn, const uint16 *x, int len, uint32 radix)
{
	int			i = 0;

	BN_zero(bn);
	while (i < len)
	{
		uint64		mult = 1;
		uint64		chunk = 0;

		while (i < len && mult * radix <= PG_UINT32_MAX)
		{
			chunk = chunk * radix + x[i++];
			mult *= radix;
		}
		if (!BN_mul_word(bn, (BN_ULONG) mult) || !BN_add_word(bn, (BN_ULONG) chunk))
			return false;
	}
	return true;
}

/* STR^m_r of a BIGNUM below radix^m; consumes (zeroes) bn. */
static bool
bn_to_numerals(BIGNUM *bn, uint16 *out, int m, uint32 radix)
{
	int			pos = m;

	while (pos > 0)
	{
		uint64		div = 1;
		int			k = 0;
		BN_ULONG	rem;

		while (k < pos && div * radix <= PG_UINT32_MAX)
		{
			div *= radix;
			k++;
		}
		rem = BN_div_word(bn, (BN_ULONG) div);
		if (rem == (BN_ULONG) -1)
			return false;
		while (k-- > 0)
		{
			out[--pos] = (uint16) (rem % radix);
			rem /= radix;
		}
	}
	return true;
}

/* Bit length of x (0 for 0). */
static int
bitlen64(uint64 x)
{
	int			n = 0;

	while (x != 0)
	{
		n++;
		x >>= 1;
	}
	return n;
}

/*
 * Encrypt or decrypt the numeral string in[0..n-1] into out[0..n-1] (which
 * may be the same array) under the loaded key and the tweak.
 */
LicdataFF1Status
licdata_ff1_crypt(uint32 radix, const uint8 *tweak, int tweaklen,
				  const uint16 *in, int n, uint16 *out, bool decrypt)
{
	uint8		p[AES_BLOCK];
	uint8		cbc_p[AES_BLOCK];
	uint8		q[FF1_MAX_Q];
	uint8		s[FF1_MAX_S];
	int			u,
				v,
				b,
				d,
				qlen,
				qpad,
				i,
				round;
	uint64		rv = 1;
	bool		small;
	LicdataFF1Status status = LICDATA_FF1_OK;

	if (radix < LICDATA_FF1_MIN_RADIX || radix > LICDATA_FF1_MAX_RADIX)
		return LICDATA_FF1_BAD_RADIX;
	if (n > LICDATA_FF1_MAX_LEN)
		return LICDATA_FF1_TOO_LONG;
	if (n < licdata_ff1_min_length(radix))
		return LICDATA_FF1_TOO_SHORT;
	if (tweaklen < 0 || tweaklen > LICDATA_FF1_MAX_TWEAK)
		return LICDATA_FF1_BAD_TWEAK;
	if (!ff1_have_key)
		return LICDATA_FF1_NO_KEY;
	for (i = 0; i < n; i++)
		if (in[i] >= radix)
			return LICDATA_FF1_BAD_NUMERAL;

	u = n / 2;
	v = n - u;

	/* r^v, as long as it stays below 2^32: then the uint64 path applies */
	for (i = 0; i < v && rv <= PG_UINT32_MAX; i++)
		rv *= radix;
	small = (rv <= PG_UINT32_MAX) && !licdata_ff1_force_bignum;

	/* P = [1,2,1] [radix]^3 [10] [u mod 256] [n]^4 [t]^4 */
	p[0] = 1;
	p[1] = 2;
	p[2] = 1;
	p[3] = (uint8) (radix >> 16);
	p[4] = (uint8) (radix >> 8);
	p[5] = (uint8) radix;
	p[6] = 10;
	p[7] = (uint8) (u % 256);
	p[8] = (uint8) ((uint32) n >> 24);
	p[9] = (uint8) ((uint32) n >> 16);
	p[10] = (uint8) ((uint32) n >> 8);
	p[11] = (uint8) n;
	p[12] = (uint8) ((uint32) tweaklen >> 24);
	p[13] = (uint8) ((uint32) tweaklen >> 16);
	p[14] = (uint8) ((uint32) tweaklen >> 8);
	p[15] = (uint8) tweaklen;
	if (!aes_blocks(p, cbc_p, 1))
		return LICDATA_FF1_CRYPTO_ERROR;

	if (small)
	{
		uint64		num_a = 0,
					num_b = 0,
					pow_u = 1,
					pow_v = rv;

		b = (bitlen64(rv - 1) + 7) / 8;
		d = 4 * ((b + 3) / 4) + 4;	/* 8: y fits in uint64 */
		Assert(b <= 4 && d == 8);

		qpad = (16 - ((tweaklen + b + 1) % 16)) % 16;
		qlen = tweaklen + qpad + 1 + b;
		if (tweaklen > 0)
			memcpy(q, tweak, tweaklen);
		memset(q + tweaklen, 0, qpad);

		for (i = 0; i < u; i++)
		{
			num_a = num_a * radix + in[i];
			pow_u *= radix;
		}
		for (i = u; i < n; i++)
			num_b = num_b * radix + in[i];

		for (round = 0; round < FF1_ROUNDS; round++)
		{
			int			r = decrypt ? FF1_ROUNDS - 1 - round : round;
			uint64		src = decrypt ? num_a : num_b;
			uint64		y = 0;
			uint64		pow_m = (r % 2 == 0) ? pow_u : pow_v;
			uint64		c;
			int			k;

			q[tweaklen + qpad] = (uint8) r;
			for (k = 0; k < b; k++)
				q[qlen - 1 - k] = (uint8) (src >> (8 * k));
			if (!ff1_round_bytes(cbc_p, q, qlen, d, s))
			{
				status = LICDATA_FF1_CRYPTO_ERROR;
				break;
			}
			for (k = 0; k < d; k++)
				y = (y << 8) | s[k];
			y %= pow_m;
			if (!decrypt)
			{
				c = (num_a + y) % pow_m;
				num_a = num_b;
				num_b = c;
			}
			else
			{
				c = (num_b + pow_m - y) % pow_m;
				num_b = num_a;
				num_a = c;
			}
		}
		if (status == LICDATA_FF1_OK)
		{
			for (i = u - 1; i >= 0; i--)
			{
				out[i] = (uint16) (num_a % radix);
				num_a /= radix;
			}
			for (i = n - 1; i >= u; i--)
			{
				out[i] = (uint16) (num_b % radix);
				num_b /= radix;
			}
		}
	}
	else
	{
		BIGNUM	   *num_a,
				   *num_b,
				   *pow_u,
				   *pow_v,
				   *y,
				   *c,
				   *tmp;

		if (ff1_bn == NULL)
		{
			ff1_bn = BN_CTX_new();
			if (ff1_bn == NULL)
				return LICDATA_FF1_CRYPTO_ERROR;
		}
		BN_CTX_start(ff1_bn);
		num_a = BN_CTX_get(ff1_bn);
		num_b = BN_CTX_get(ff1_bn);
		pow_u = BN_CTX_get(ff1_bn);
		pow_v = BN_CTX_get(ff1_bn);
		y = BN_CTX_get(ff1_bn);
		c = BN_CTX_get(ff1_bn);
		tmp = BN_CTX_get(ff1_bn);	/* the last get fails first */
		if (tmp == NULL ||
			!BN_set_word(tmp, radix) ||
			!BN_set_word(c, (BN_ULONG) u) ||
			!BN_exp(pow_u, tmp, c, ff1_bn) ||
			!BN_set_word(c, (BN_ULONG) v) ||
			!BN_exp(pow_v, tmp, c, ff1_bn) ||
			!BN_copy(tmp, pow_v) ||
			!BN_sub_word(tmp, 1) ||
			!bn_from_numerals(num_a, in, u, radix) ||
			!bn_from_numerals(num_b, in + u, v, radix))
		{
			BN_CTX_end(ff1_bn);
			return LICDATA_FF1_CRYPTO_ERROR;
		}
		b = (BN_num_bits(tmp) + 7) / 8;
		d = 4 * ((b + 3) / 4) + 4;
		Assert(b <= FF1_MAX_B && d <= FF1_MAX_D);

		qpad = (16 - ((tweaklen + b + 1) % 16)) % 16;
		qlen = tweaklen + qpad + 1 + b;
		if (tweaklen > 0)
			memcpy(q, tweak, tweaklen);
		memset(q + tweaklen, 0, qpad);

		for (round = 0; round < FF1_ROUNDS; round++)
		{
			int			r = decrypt ? FF1_ROUNDS - 1 - round : round;
			BIGNUM	   *pow_m = (r % 2 == 0) ? pow_u : pow_v;
			BIGNUM	   *swap;

			q[tweaklen + qpad] = (uint8) r;
			if (BN_bn2binpad(decrypt ? num_a : num_b, q + qlen - b, b) != b ||
				!ff1_round_bytes(cbc_p, q, qlen, d, s) ||
				BN_bin2bn(s, d, y) == NULL)
			{
				status = LICDATA_FF1_CRYPTO_ERROR;
				break;
			}
			if (!decrypt)
			{
				/* C = (NUM(A) + y) mod r^m; A = B; B = C */
				if (!BN_add(c, num_a, y) || !BN_nnmod(c, c, pow_m, ff1_bn))
				{
					status = LICDATA_FF1_CRYPTO_ERROR;
					break;
				}
				swap = num_a;
				num_a = num_b;
				num_b = c;
				c = swap;
			}
			else
			{
				/* C = (NUM(B) - y) mod r^m; B = A; A = C */
				if (!BN_sub(c, num_b, y) || !BN_nnmod(c, c, pow_m, ff1_bn))
				{
					status = LICDATA_FF1_CRYPTO_ERROR;
					break;
				}
				swap = num_b;
				num_b = num_a;
				num_a = c;
				c = swap;
			}
		}
		if (status == LICDATA_FF1_OK &&
			(!bn_to_numerals(num_a, out, u, radix) ||
			 !bn_to_numerals(num_b, out + u, v, radix)))
			status = LICDATA_FF1_CRYPTO_ERROR;
		BN_clear(num_a);
		BN_clear(num_b);
		BN_clear(c);
		BN_clear(y);
		BN_CTX_end(ff1_bn);
	}

	OPENSSL_cleanse(q, qlen);
	OPENSSL_cleanse(s, sizeof(s));
	OPENSSL_cleanse(cbc_p, sizeof(cbc_p));
	return status;
}
