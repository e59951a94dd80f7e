/*-------------------------------------------------------------------------
 *
 * keys.c
 *	  The cluster's master key and the per-licensee keys derived from it.
 *
 * Key hierarchy:
 *	- One master key per cluster: 32 random bytes in pg_licdata/master.key
 *	  (mode 0600, under the data directory, outside the catalog, so it is
 *	  in file-level backups and base backups but never in pg_dump output or
 *	  a table).  The postmaster creates it at first start
 *	  (licdata_keys_init_postmaster); licdata.rotate_master_key() replaces
 *	  it with a random key (licdata_keys_rotate), and
 *	  licdata.import_master_key() with one exported from another cluster
 *	  (licdata_keys_import; licdata_keys_export wraps it under a
 *	  passphrase, so a key leaves the cluster only wrapped).
 *	- Per licensee and use, a 32-byte subkey:
 *		crypto_kdf_derive_from_key(subkey, 32, key_id, context[use], master)
 *	  with key_id the licensee's stable id (licdata.licensees.key_id, kept
 *	  across dump and restore unlike role OIDs) and an 8-byte context per
 *	  use: "ldpseud1" (pseudonyms), "ldffone1" (FF1 / AES-256), "ldnoise1"
 *	  (noise).  Keys of different uses or licensees are independent.
 *
 * Invariants:
 *	- Key material lives only in libsodium's guarded memory (sodium_malloc:
 *	  guard pages, mlock, not in core dumps where supported): the "vault"
 *	  holds the master key and a small cache of derived keys, and is kept
 *	  read-only (sodium_mprotect_readonly) except while it is written.  The
 *	  postmaster never loads the key: each backend reads the file itself on
 *	  first use, so no key is inherited through fork.
 *	- Keyed hashing is BLAKE2b in its keyed mode (RFC 7693 section 3.3:
 *	  the key, zero-padded to a 128-byte block, is the first block), with a
 *	  40-byte digest: the same function as libsodium's crypto_generichash
 *	  with a 32-byte key.  The vault caches the chaining value after the
 *	  key block, so a value of up to 128 bytes costs one compression instead
 *	  of two (libsodium keeps the key block buffered and cannot do this);
 *	  this is the precomputation HMAC implementations do with ipad/opad.
 *	  Each backend checks the result against crypto_generichash once before
 *	  first use (blake2b_self_test).
 *	- The vault is wiped and freed at backend exit (sodium_free wipes); the
 *	  per-call working state of the compression function is wiped after
 *	  each call.
 *	- Rotation and import write the new file (temporary file, fsync, rename,
 *	  fsync of the directory) and only then bumps licdata_shared->key_generation.  A
 *	  backend reads the generation before it reads the file, so it can at
 *	  worst load the new key under the old generation number and load it
 *	  again, never keep an old key under the new number.
 *	- No key byte is ever written to a message, the log, or returned to SQL;
 *	  an export returns the key only wrapped under a passphrase, and the
 *	  errors of export and import hide the statement (errhidestmt), which
 *	  holds the passphrase.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define BLAKE2B_HAVE_AVX2 1
#endif

#include "miscadmin.h"
#include "storage/fd.h"
#include "storage/ipc.h"

#include "errcodes.h"
#include "keys.h"
#include "licdata.h"
#include "shmem.h"

#define KEY_CACHE_ENTRIES	16
#define TEMP_PREFIX			"master.key.tmp."

StaticAssertDecl(LICDATA_KEY_BYTES == crypto_kdf_KEYBYTES,
				 "the master key is a libsodium KDF key");
StaticAssertDecl(LICDATA_KEY_BYTES >= crypto_kdf_BYTES_MIN &&
				 LICDATA_KEY_BYTES <= crypto_kdf_BYTES_MAX,
				 "derived keys have a length libsodium's KDF supports");
StaticAssertDecl(LICDATA_KEYED_HASH_BYTES <= crypto_generichash_BYTES_MAX,
				 "keyed hash length within BLAKE2b's");
StaticAssertDecl(LICDATA_KEY_BYTES <= crypto_generichash_KEYBYTES_MAX,
				 "derived keys are valid BLAKE2b keys");

#define BLAKE2B_BLOCK		128

/* KDF context (exactly crypto_kdf_CONTEXTBYTES = 8 characters) per use. */
static const char *const key_contexts[LICDATA_KEY_NUM_USES] = {
	"ldpseud1",					/* LICDATA_KEY_PSEUDONYM */
	"ldffone1",					/* LICDATA_KEY_FPE */
	"ldnoise1",					/* LICDATA_KEY_NOISE */
	"ldaudit1",					/* LICDATA_KEY_AUDIT */
};

typedef struct KeyCacheEntry
{
	uint64		blake_h[8];		/* BLAKE2b chaining value after the key block */
	uint8		key[LICDATA_KEY_BYTES];
	int64		key_id;
	int			use;
	bool		valid;
} KeyCacheEntry;

/* Everything secret a backend holds; one sodium_malloc allocation. */
typedef struct KeyVault
{
	KeyCacheEntry entries[KEY_CACHE_ENTRIES];
	uint8		master[LICDATA_KEY_BYTES];
} KeyVault;

static KeyVault *vault = NULL;

/* Bookkeeping (not secret) kept outside the vault. */
static bool master_loaded = false;
static uint64 loaded_generation = 0;
static uint64 local_epoch = 0;
static int	last_hit = 0;
static int	next_victim = 0;

/* ----------------------------------------------------------------
 * BLAKE2b (RFC 7693), keyed mode, with the key block precomputed
 * ----------------------------------------------------------------
 */

static const uint64 blake2b_iv[8] = {
	UINT64CONST(0x6a09e667f3bcc908), UINT64CONST(0xbb67ae8584caa73b),
	UINT64CONST(0x3c6ef372fe94f82b), UINT64CONST(0xa54ff53a5f1d36f1),
	UINT64CONST(0x510e527fade682d1), UINT64CONST(0x9b05688c2b3e6c1f),
	UINT64CONST(0x1f83d9abfb41bd6b), UINT64CONST(0x5be0cd19137e2179)
};

static const uint8 blake2b_sigma[12][16] = {
	{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
	{14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3},
	{11, 8, 12, 0, 5, 2, 15, 13, 10, 14, 3, 6, 7, 1, 9, 4},
	{7, 9, 3, 1, 13, 12, 11, 14, 2, 6, 5, 10, 4, 0, 15, 8},
	{9, 0, 5, 7, 2, 4, 10, 15, 14, 1, 11, 12, 6, 8, 3, 13},
	{2, 12, 6, 10, 0, 11, 8, 3, 4, 13, 7, 5, 15, 14, 1, 9},
	{12, 5, 1, 15, 14, 13, 4, 10, 0, 7, 6, 3, 9, 2, 8, 11},
	{13, 11, 7, 14, 12, 1, 3, 9, 5, 0, 15, 4, 8, 6, 2, 10},
	{6, 15, 14, 9, 11, 3, 0, 8, 12, 2, 13, 7, 1, 4, 10, 5},
	{10, 2, 8, 4, 7, 6, 1, 5, 15, 11, 9, 14, 3, 12, 13, 0},
	{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
	{14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3}
};

#define ROTR64(x, n)	(((x) >> (n)) | ((x) << (64 - (n))))

#define BLAKE2B_G(a, b, c, d, x, y) \
	do { \
		a = a + b + (x); \
		d = ROTR64(d ^ a, 32); \
		c = c + d; \
		b = ROTR64(b ^ c, 24); \
		a = a + b + (y); \
		d = ROTR64(d ^ a, 16); \
		c = c + d; \
		b = ROTR64(b ^ c, 63); \
	} while (0)

static inline uint64
load64_le(const uint8 *p)
{
#ifndef WORDS_BIGENDIAN
	uint64		w;

	memcpy(&w, p, sizeof(w));
	return w;
#else
	return (uint64) p[0] | ((uint64) p[1] << 8) | ((uint64) p[2] << 16) |
		((uint64) p[3] << 24) | ((uint64) p[4] << 32) | ((uint64) p[5] << 40) |
		((uint64) p[6] << 48) | ((uint64) p[7] << 56);
#endif
}

/*
 * The compression function F: h is updated with one 128-byte block, t the
 * number of bytes hashed so far including this block, last for the final
 * block.  Wipes its working state.  Two implementations, the same function:
 * this portable one, and one with 256-bit vectors (below) where the CPU has
 * AVX2; each backend checks the one it uses, and the portable one, against
 * libsodium before first use (blake2b_self_test).  The portable one wipes
 * its arrays; after the vector one, the stack it used is wiped.
 */
static void
blake2b_compress_portable(uint64 h[8], const uint8 block[BLAKE2B_BLOCK], uint64 t, bool last)
{
	uint64		m[16];
	uint64		v[16];
	int			i;

	for (i = 0; i < 16; i++)
		m[i] = load64_le(block + 8 * i);
	for (i = 0; i < 8; i++)
	{
		v[i] = h[i];
		v[i + 8] = blake2b_iv[i];
	}
	v[12] ^= t;					/* t < 2^64: the high word of the counter is 0 */
	if (last)
		v[14] = ~v[14];
	/*
	 * The twelve rounds written out: with the round number a constant, the
	 * message-word indices fold into the code (no table lookups, no loop).
	 */
#define BLAKE2B_ROUND(r) \
	do { \
		BLAKE2B_G(v[0], v[4], v[8], v[12], m[blake2b_sigma[r][0]], m[blake2b_sigma[r][1]]); \
		BLAKE2B_G(v[1], v[5], v[9], v[13], m[blake2b_sigma[r][2]], m[blake2b_sigma[r][3]]); \
		BLAKE2B_G(v[2], v[6], v[10], v[14], m[blake2b_sigma[r][4]], m[blake2b_sigma[r][5]]); \
		BLAKE2B_G(v[3], v[7], v[11], v[15], m[blake2b_sigma[r][6]], m[blake2b_sigma[r][7]]); \
		BLAKE2B_G(v[0], v[5], v[10], v[15], m[blake2b_sigma[r][8]], m[blake2b_sigma[r][9]]); \
		BLAKE2B_G(v[1], v[6], v[11], v[12], m[blake2b_sigma[r][10]], m[blake2b_sigma[r][11]]); \
		BLAKE2B_G(v[2], v[7], v[8], v[13], m[blake2b_sigma[r][12]], m[blake2b_sigma[r][13]]); \
		BLAKE2B_G(v[3], v[4], v[9], v[14], m[blake2b_sigma[r][14]], m[blake2b_sigma[r][15]]); \
	} while (0)
	BLAKE2B_ROUND(0);
	BLAKE2B_ROUND(1);
	BLAKE2B_ROUND(2);
	BLAKE2B_ROUND(3);
	BLAKE2B_ROUND(4);
	BLAKE2B_ROUND(5);
	BLAKE2B_ROUND(6);
	BLAKE2B_ROUND(7);
	BLAKE2B_ROUND(8);
	BLAKE2B_ROUND(9);
	BLAKE2B_ROUND(10);
	BLAKE2B_ROUND(11);
#undef BLAKE2B_ROUND
	for (i = 0; i < 8; i++)
		h[i] ^= v[i] ^ v[i + 8];
	sodium_memzero(v, sizeof(v));
	sodium_memzero(m, sizeof(m));
}

#ifdef BLAKE2B_HAVE_AVX2
/*
 * F with the state's four rows in four 256-bit registers: the four G of a
 * column step (and of a diagonal step, after rotating rows 2-4 by one, two
 * and three lanes) run as one vector operation each.  About a third of the
 * portable function's instructions.  The working state is in vector
 * registers, cleared at the end (vzeroall), and in what the compiler
 * spills to the stack, wiped by the caller (blake2b_burn_stack).
 */
#define B2_ROT32(x)		_mm256_shuffle_epi32((x), _MM_SHUFFLE(2, 3, 0, 1))
#define B2_ROT24(x)		_mm256_shuffle_epi8((x), rot24)
#define B2_ROT16(x)		_mm256_shuffle_epi8((x), rot16)
#define B2_ROT63(x)		_mm256_or_si256(_mm256_srli_epi64((x), 63), _mm256_add_epi64((x), (x)))
#define B2_W(r, i)	((long long) load64_le(block + 8 * blake2b_sigma[r][i]))
#define B2_MSG(r, a, b, c, d) \
	_mm256_set_epi64x(B2_W(r, d), B2_W(r, c), B2_W(r, b), B2_W(r, a))
#define B2_HALF(x, ROTD, ROTB) \
	do { \
		row1 = _mm256_add_epi64(_mm256_add_epi64(row1, (x)), row2); \
		row4 = ROTD(_mm256_xor_si256(row4, row1)); \
		row3 = _mm256_add_epi64(row3, row4); \
		row2 = ROTB(_mm256_xor_si256(row2, row3)); \
	} while (0)
#define B2_ROUND(r) \
	do { \
		B2_HALF(B2_MSG(r, 0, 2, 4, 6), B2_ROT32, B2_ROT24); \
		B2_HALF(B2_MSG(r, 1, 3, 5, 7), B2_ROT16, B2_ROT63); \
		row2 = _mm256_permute4x64_epi64(row2, _MM_SHUFFLE(0, 3, 2, 1)); \
		row3 = _mm256_permute4x64_epi64(row3, _MM_SHUFFLE(1, 0, 3, 2)); \
		row4 = _mm256_permute4x64_epi64(row4, _MM_SHUFFLE(2, 1, 0, 3)); \
		B2_HALF(B2_MSG(r, 8, 10, 12, 14), B2_ROT32, B2_ROT24); \
		B2_HALF(B2_MSG(r, 9, 11, 13, 15), B2_ROT16, B2_ROT63); \
		row2 = _mm256_permute4x64_epi64(row2, _MM_SHUFFLE(2, 1, 0, 3)); \
		row3 = _mm256_permute4x64_epi64(row3, _MM_SHUFFLE(1, 0, 3, 2)); \
		row4 = _mm256_permute4x64_epi64(row4, _MM_SHUFFLE(0, 3, 2, 1)); \
	} while (0)

__attribute__((target("avx2")))
static void
blake2b_compress_avx2(uint64 h[8], const uint8 block[BLAKE2B_BLOCK], uint64 t, bool last)
{
	const __m256i rot24 = _mm256_setr_epi8(3, 4, 5, 6, 7, 0, 1, 2, 11, 12, 13, 14, 15, 8, 9, 10,
										   3, 4, 5, 6, 7, 0, 1, 2, 11, 12, 13, 14, 15, 8, 9, 10);
	const __m256i rot16 = _mm256_setr_epi8(2, 3, 4, 5, 6, 7, 0, 1, 10, 11, 12, 13, 14, 15, 8, 9,
										   2, 3, 4, 5, 6, 7, 0, 1, 10, 11, 12, 13, 14, 15, 8, 9);
	__m256i		row1 = _mm256_loadu_si256((const __m256i *) h);
	__m256i		row2 = _mm256_loadu_si256((const __m256i *) (h + 4));
	__m256i		row3 = _mm256_loadu_si256((const __m256i *) blake2b_iv);
	__m256i		row4 = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *) (blake2b_iv + 4)),
										_mm256_set_epi64x(0, last ? -1 : 0, 0, (long long) t));

	B2_ROUND(0);
	B2_ROUND(1);
	B2_ROUND(2);
	B2_ROUND(3);
	B2_ROUND(4);
	B2_ROUND(5);
	B2_ROUND(6);
	B2_ROUND(7);
	B2_ROUND(8);
	B2_ROUND(9);
	B2_ROUND(10);
	B2_ROUND(11);
	/* h is read again rather than kept in registers across the rounds */
	_mm256_storeu_si256((__m256i *) h,
						_mm256_xor_si256(_mm256_loadu_si256((const __m256i *) h),
										 _mm256_xor_si256(row1, row3)));
	_mm256_storeu_si256((__m256i *) (h + 4),
						_mm256_xor_si256(_mm256_loadu_si256((const __m256i *) (h + 4)),
										 _mm256_xor_si256(row2, row4)));
	_mm256_zeroall();
}
#undef B2_ROT32
#undef B2_ROT24
#undef B2_ROT16
#undef B2_ROT63
#undef B2_W
#undef B2_MSG
#undef B2_HALF
#undef B2_ROUND
#endif							/* BLAKE2B_HAVE_AVX2 */

typedef void (*Blake2bCompressFn) (uint64 h[8], const uint8 block[BLAKE2B_BLOCK], uint64 t,
								   bool last);

/* The implementation in use: chosen once per backend, checked before use. */
static Blake2bCompressFn blake2b_compress_impl = NULL;

static Blake2bCompressFn
blake2b_best_impl(void)
{
#ifdef BLAKE2B_HAVE_AVX2
	__builtin_cpu_init();
	if (__builtin_cpu_supports("avx2"))
		return blake2b_compress_avx2;
#endif
	return blake2b_compress_portable;
}

/*
 * Wipe the stack below the caller's frame, where the function just
 * returned from kept what it spilled from registers (the vector
 * implementation's working state lives in registers, but the compiler may
 * spill some of it).
 */
pg_noinline static void
blake2b_burn_stack(void)
{
	uint8		buf[512];

	sodium_memzero(buf, sizeof(buf));
}

static inline void
blake2b_compress(uint64 h[8], const uint8 block[BLAKE2B_BLOCK], uint64 t, bool last)
{
	if (unlikely(blake2b_compress_impl == NULL))
		blake2b_compress_impl = blake2b_best_impl();
	blake2b_compress_impl(h, block, t, last);
#ifdef BLAKE2B_HAVE_AVX2
	if (blake2b_compress_impl == blake2b_compress_avx2)
		blake2b_burn_stack();
#endif
}

/*
 * Chaining value of keyed BLAKE2b (digest LICDATA_KEYED_HASH_BYTES, key
 * LICDATA_KEY_BYTES) after the key block, which is not the last block.
 */
static void
blake2b_key_block(uint64 h[8], const uint8 key[LICDATA_KEY_BYTES])
{
	uint8		block[BLAKE2B_BLOCK];

	memcpy(h, blake2b_iv, sizeof(blake2b_iv));
	/* parameter block: digest length, key length, fanout 1, depth 1 */
	h[0] ^= UINT64CONST(0x01010000) | (LICDATA_KEY_BYTES << 8) | LICDATA_KEYED_HASH_BYTES;
	memset(block, 0, sizeof(block));
	memcpy(block, key, LICDATA_KEY_BYTES);
	blake2b_compress(h, block, BLAKE2B_BLOCK, false);
	sodium_memzero(block, sizeof(block));
}

/*
 * Finish keyed BLAKE2b of a non-empty message from the chaining value after
 * the key block (h_key, not changed).  Writes LICDATA_KEYED_HASH_BYTES.
 */
static void
blake2b_keyed_finish(const uint64 h_key[8], const uint8 *in, size_t inlen,
					 uint8 out[LICDATA_KEYED_HASH_BYTES])
{
	uint64		h[8];
	uint8		last[BLAKE2B_BLOCK];
	uint64		t = BLAKE2B_BLOCK;

	Assert(inlen > 0);
	memcpy(h, h_key, sizeof(h));
	while (inlen > BLAKE2B_BLOCK)
	{
		t += BLAKE2B_BLOCK;
		blake2b_compress(h, in, t, false);
		in += BLAKE2B_BLOCK;
		inlen -= BLAKE2B_BLOCK;
	}
	memset(last, 0, sizeof(last));
	memcpy(last, in, inlen);
	t += inlen;
	blake2b_compress(h, last, t, true);
#ifdef WORDS_BIGENDIAN
	for (int i = 0; i < LICDATA_KEYED_HASH_BYTES; i++)
		out[i] = (uint8) (h[i / 8] >> (8 * (i % 8)));
#else
	memcpy(out, h, LICDATA_KEYED_HASH_BYTES);	/* little-endian words */
#endif
	sodium_memzero(h, sizeof(h));
	sodium_memzero(last, sizeof(last));
}

/*
 * Check blake2b_keyed_finish against libsodium's crypto_generichash over
 * lengths around the block boundaries, with a fixed public test key.
 */
static bool
blake2b_self_test_impl(Blake2bCompressFn impl)
{
	static const int lengths[] = {1, 18, 127, 128, 129, 255, 256, 257, 1000};
	uint8		key[LICDATA_KEY_BYTES];
	uint8		msg[1000];
	uint8		ours[LICDATA_KEYED_HASH_BYTES];
	uint8		theirs[LICDATA_KEYED_HASH_BYTES];
	uint64		h[8];
	bool		ok = true;

	blake2b_compress_impl = impl;
	for (int i = 0; i < (int) sizeof(key); i++)
		key[i] = (uint8) i;
	for (int i = 0; i < (int) sizeof(msg); i++)
		msg[i] = (uint8) (i * 7 + 3);
	blake2b_key_block(h, key);
	for (int i = 0; i < lengthof(lengths); i++)
	{
		blake2b_keyed_finish(h, msg, lengths[i], ours);
		if (crypto_generichash(theirs, sizeof(theirs), msg, lengths[i],
							   key, sizeof(key)) != 0 ||
			memcmp(ours, theirs, sizeof(ours)) != 0)
			ok = false;
	}
	return ok;
}

/* Both implementations where both can run; the best one is then in use. */
static bool
blake2b_self_test(void)
{
	Blake2bCompressFn best = blake2b_best_impl();
	bool		ok = blake2b_self_test_impl(blake2b_compress_portable);

	if (best != blake2b_compress_portable && !blake2b_self_test_impl(best))
		ok = false;
	blake2b_compress_impl = best;
	return ok;
}

/*
 * Initialise libsodium; safe to call more than once.
 */
static void
keys_sodium_init(void)
{
	if (sodium_init() < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not initialise libsodium")));
}

/*
 * fsync a directory, so that a rename or link in it is durable.
 */
static void
keys_fsync_dir(const char *path)
{
	int			fd;

	fd = open(path, O_RDONLY | PG_BINARY);
	if (fd < 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not open directory \"%s\": %m", path)));
	if (pg_fsync(fd) != 0)
	{
		int			save_errno = errno;

		close(fd);
		errno = save_errno;
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not fsync directory \"%s\": %m", path)));
	}
	close(fd);
}

/*
 * Write key to a new temporary file (mode 0600) and fsync it; the name is
 * returned in tmppath.  On failure the temporary file is removed and an
 * error raised.
 */
static void
keys_write_temp(const uint8 *key, char *tmppath, size_t tmppathlen)
{
	int			fd;
	ssize_t		written;

	snprintf(tmppath, tmppathlen, "%s/%s%d", LICDATA_DIR, TEMP_PREFIX, (int) getpid());
	/* a leftover of a crashed process that had our pid */
	(void) unlink(tmppath);

	fd = open(tmppath, O_WRONLY | O_CREAT | O_EXCL | PG_BINARY, S_IRUSR | S_IWUSR);
	if (fd < 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not create file \"%s\": %m", tmppath)));
	errno = 0;
	written = write(fd, key, LICDATA_KEY_BYTES);
	if (written != LICDATA_KEY_BYTES || pg_fsync(fd) != 0)
	{
		int			save_errno = errno ? errno : ENOSPC;

		close(fd);
		(void) unlink(tmppath);
		errno = save_errno;
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not write file \"%s\": %m", tmppath)));
	}
	if (close(fd) != 0)
	{
		int			save_errno = errno;

		(void) unlink(tmppath);
		errno = save_errno;
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not close file \"%s\": %m", tmppath)));
	}
}

/*
 * Remove temporary key files left by a rotation that crashed between
 * writing and renaming; they hold keys that never became the master key.
 */
static void
keys_remove_stale_temps(void)
{
	DIR		   *dir;
	struct dirent *de;

	dir = opendir(LICDATA_DIR);
	if (dir == NULL)
		return;
	while ((de = readdir(dir)) != NULL)
	{
		char		path[MAXPGPATH];

		if (strncmp(de->d_name, TEMP_PREFIX, strlen(TEMP_PREFIX)) != 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", LICDATA_DIR, de->d_name);
		if (unlink(path) != 0)
			ereport(WARNING,
					(errcode_for_file_access(),
					 errmsg("could not remove file \"%s\": %m", path)));
	}
	closedir(dir);
}

/*
 * licdata_keys_init_postmaster
 *		Create pg_licdata/ (0700) and pg_licdata/master.key (0600, 32 random
 *		bytes) when they do not exist yet; check the key file when it does.
 *
 * Runs in the postmaster from _PG_init, with the data directory as working
 * directory.  The new key is written to a temporary file, fsynced, and
 * link()ed into place, which fails rather than replace an existing key, so
 * a crash leaves either no key file or a complete one.  The key is never
 * kept in the postmaster.  Errors here stop the server from starting: a
 * cluster whose key cannot be created or read cannot mask consistently.
 */
void
licdata_keys_init_postmaster(void)
{
	struct stat st;
	uint8	   *key;
	char		tmppath[MAXPGPATH];

	keys_sodium_init();

	if (mkdir(LICDATA_DIR, S_IRWXU) != 0 && errno != EEXIST)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not create directory \"%s\": %m", LICDATA_DIR)));

	keys_remove_stale_temps();

	if (stat(LICDATA_MASTER_KEY_FILE, &st) == 0)
	{
		if (!S_ISREG(st.st_mode) || st.st_size != LICDATA_KEY_BYTES)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("licdata master key file \"%s\" is damaged",
							LICDATA_MASTER_KEY_FILE),
					 errdetail("The file must be a regular file of exactly %d bytes.",
							   LICDATA_KEY_BYTES),
					 errhint("Restore the file from a backup.  Removing it makes licdata create a new key at the next start, which changes every pseudonym and FPE value.")));
		return;
	}
	if (errno != ENOENT)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not stat file \"%s\": %m", LICDATA_MASTER_KEY_FILE)));

	key = sodium_malloc(LICDATA_KEY_BYTES);
	if (key == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory")));
	randombytes_buf(key, LICDATA_KEY_BYTES);
	PG_TRY();
	{
		keys_write_temp(key, tmppath, sizeof(tmppath));
	}
	PG_FINALLY();
	{
		sodium_free(key);
	}
	PG_END_TRY();

	if (link(tmppath, LICDATA_MASTER_KEY_FILE) != 0)
	{
		int			save_errno = errno;

		(void) unlink(tmppath);
		errno = save_errno;
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not create file \"%s\": %m", LICDATA_MASTER_KEY_FILE)));
	}
	(void) unlink(tmppath);
	keys_fsync_dir(LICDATA_DIR);

	ereport(LOG,
			(errmsg("licdata created a new master key in \"%s\"",
					LICDATA_MASTER_KEY_FILE)));
}

/* Wipe and free the key buffers at backend exit. */
static void
keys_at_exit(int code, Datum arg)
{
	if (vault != NULL)
		sodium_free(vault);
	vault = NULL;
	master_loaded = false;
}

/* Allocate the vault on first use, after checking the keyed hash. */
static void
keys_alloc(void)
{
	keys_sodium_init();
	if (!blake2b_self_test())
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("licdata keyed hash self-test failed"),
				 errdetail("The BLAKE2b implementation disagrees with libsodium's.")));
	vault = sodium_malloc(sizeof(KeyVault));
	if (vault == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory"),
				 errdetail("Could not allocate protected memory for licdata's keys.")));
	memset(vault, 0, sizeof(KeyVault));
	sodium_mprotect_readonly(vault);
	on_proc_exit(keys_at_exit, (Datum) 0);
}

/*
 * Read the master key file into the vault and forget every derived key.
 * generation is the shared key generation read before the file.
 */
static void
keys_load_master(uint64 generation)
{
	int			fd;
	ssize_t		got;
	uint8		extra;
	int			save_errno;
	bool		ok;

	if (vault == NULL)
		keys_alloc();

	fd = open(LICDATA_MASTER_KEY_FILE, O_RDONLY | PG_BINARY);
	if (fd < 0)
		ereport(ERROR,
				(errcode(ERRCODE_LD_NOT_READY),
				 errmsg("could not open licdata master key file \"%s\": %m",
						LICDATA_MASTER_KEY_FILE),
				 errhint("licdata creates the file when the server starts with licdata in shared_preload_libraries; if it was removed, restore it from a backup.")));

	master_loaded = false;
	sodium_mprotect_readwrite(vault);
	errno = 0;
	got = read(fd, vault->master, LICDATA_KEY_BYTES);
	ok = (got == LICDATA_KEY_BYTES && read(fd, &extra, 1) == 0);
	save_errno = errno;
	if (!ok)
		sodium_memzero(vault->master, LICDATA_KEY_BYTES);
	for (int i = 0; i < KEY_CACHE_ENTRIES; i++)
	{
		if (vault->entries[i].valid)
			sodium_memzero(&vault->entries[i], sizeof(KeyCacheEntry));
	}
	sodium_mprotect_readonly(vault);
	close(fd);

	if (!ok)
	{
		errno = save_errno;
		if (got < 0)
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not read licdata master key file \"%s\": %m",
							LICDATA_MASTER_KEY_FILE)));
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("licdata master key file \"%s\" is damaged",
						LICDATA_MASTER_KEY_FILE),
				 errdetail("The file must be exactly %d bytes long.", LICDATA_KEY_BYTES),
				 errhint("Restore the file from a backup.")));
	}
	master_loaded = true;
	loaded_generation = generation;
	local_epoch++;
}

/*
 * Make sure the vault holds the current master key: load it on first use,
 * reload it when a rotation bumped the shared generation.
 */
static void
keys_refresh(void)
{
	uint64		generation;

	if (licdata_shared == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_LD_NOT_READY),
				 errmsg("licdata keys are not available because licdata is not preloaded"),
				 errhint("Add licdata to shared_preload_libraries in postgresql.conf and restart the server.")));

	generation = pg_atomic_read_u64(&licdata_shared->key_generation);
	if (likely(master_loaded && generation == loaded_generation))
		return;
	/* read the generation before the file (see the file header) */
	pg_read_barrier();
	keys_load_master(generation);
}

uint64
licdata_keys_epoch(void)
{
	keys_refresh();
	return local_epoch;
}

/*
 * The cache entry for (key_id, use), derived on a miss.  The least
 * recently derived entry is replaced (round robin): a query touches few
 * licensees, so 16 entries are plenty.
 */
static KeyCacheEntry *
keys_entry(int64 key_id, LicdataKeyUse use)
{
	KeyCacheEntry *e;
	bool		ok;
	int			i;

	Assert(use >= 0 && use < LICDATA_KEY_NUM_USES);
	keys_refresh();

	e = &vault->entries[last_hit];
	if (likely(e->valid && e->key_id == key_id && e->use == (int) use))
		return e;
	for (i = 0; i < KEY_CACHE_ENTRIES; i++)
	{
		e = &vault->entries[i];
		if (e->valid && e->key_id == key_id && e->use == (int) use)
		{
			last_hit = i;
			return e;
		}
	}

	i = next_victim;
	next_victim = (next_victim + 1) % KEY_CACHE_ENTRIES;
	e = &vault->entries[i];

	sodium_mprotect_readwrite(vault);
	sodium_memzero(e, sizeof(KeyCacheEntry));
	ok = crypto_kdf_derive_from_key(e->key, LICDATA_KEY_BYTES, (uint64) key_id,
									key_contexts[use], vault->master) == 0;
	if (ok)
	{
		blake2b_key_block(e->blake_h, e->key);
		e->key_id = key_id;
		e->use = (int) use;
		e->valid = true;
	}
	else
		sodium_memzero(e, sizeof(KeyCacheEntry));
	sodium_mprotect_readonly(vault);

	if (!ok)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not derive a licensee key")));
	last_hit = i;
	return e;
}

const uint8 *
licdata_licensee_key(int64 key_id, LicdataKeyUse use)
{
	return keys_entry(key_id, use)->key;
}

/*
 * Keyed BLAKE2b-320 of in[0..inlen), truncated to outlen bytes.  An empty
 * input, whose last block is the key block itself, goes to libsodium.
 */
void
licdata_keyed_hash(int64 key_id, LicdataKeyUse use, const void *in, size_t inlen,
				   uint8 *out, size_t outlen)
{
	KeyCacheEntry *e = keys_entry(key_id, use);
	uint8		digest[LICDATA_KEYED_HASH_BYTES];

	Assert(outlen >= 1 && outlen <= LICDATA_KEYED_HASH_BYTES);
	if (likely(inlen > 0))
		blake2b_keyed_finish(e->blake_h, in, inlen, digest);
	else if (crypto_generichash(digest, sizeof(digest), NULL, 0,
								e->key, LICDATA_KEY_BYTES) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not compute a keyed hash")));
	memcpy(out, digest, outlen);
}

/*
 * keys_replace
 *		Make key (LICDATA_KEY_BYTES) the cluster's master key: write it to a
 *		temporary file, fsync, rename over the key file, bump the shared key
 *		generation so every backend reloads it at its next use, fsync the
 *		directory.
 *
 * Not transactional: the new key is in place when this returns, even if
 * the calling transaction rolls back.  Concurrent replacements are safe:
 * the last rename wins and every backend ends up on the file's key,
 * because each replacement bumps the generation after its rename.  On an
 * error before the rename nothing changed.
 */
static void
keys_replace(const uint8 *key, const char *what)
{
	char		tmppath[MAXPGPATH];

	if (licdata_shared == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_LD_NOT_READY),
				 errmsg("cannot %s the master key because licdata is not preloaded", what),
				 errhint("Add licdata to shared_preload_libraries in postgresql.conf and restart the server.")));

	keys_write_temp(key, tmppath, sizeof(tmppath));

	if (rename(tmppath, LICDATA_MASTER_KEY_FILE) != 0)
	{
		int			save_errno = errno;

		(void) unlink(tmppath);
		errno = save_errno;
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not rename file \"%s\" to \"%s\": %m",
						tmppath, LICDATA_MASTER_KEY_FILE)));
	}
	/* The rename is done: from here on the new key is the key. */
	pg_atomic_fetch_add_u64(&licdata_shared->key_generation, 1);
	keys_fsync_dir(LICDATA_DIR);
}

/*
 * licdata_keys_rotate
 *		Replace the master key with 32 new random bytes and make every
 *		backend reload it (see keys_replace).
 */
void
licdata_keys_rotate(void)
{
	uint8	   *key;

	keys_sodium_init();
	key = sodium_malloc(LICDATA_KEY_BYTES);
	if (key == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory")));
	randombytes_buf(key, LICDATA_KEY_BYTES);
	PG_TRY();
	{
		keys_replace(key, "rotate");
	}
	PG_FINALLY();
	{
		sodium_free(key);
	}
	PG_END_TRY();
}

/* ----------------------------------------------------------------
 * Export and import of the master key, wrapped under a passphrase
 * ----------------------------------------------------------------
 *
 * The exported text is one line of seven fields separated by ':'
 *
 *	licdata-master-key-v1:argon2id13:<opslimit>:<memlimit>:<salt>:<nonce>:<box>
 *
 * salt (16 bytes), nonce (24 bytes) and box (the 32-byte key and its
 * 16-byte tag) in standard base64.  The wrapping key is
 * crypto_pwhash(passphrase, salt, opslimit, memlimit, Argon2id v1.3); the
 * box is crypto_aead_xchacha20poly1305_ietf of the master key under it,
 * with the text up to and including the salt as associated data, so no
 * field can be changed without the import noticing.  A wrong passphrase
 * and an altered text look the same: the tag does not verify.
 */
#define EXPORT_MAGIC		"licdata-master-key-v1"
#define EXPORT_ALG			"argon2id13"
#define EXPORT_FIELDS		7
/* Argon2id cost of an export: 3 passes over 64 MiB (about 0.2-0.5 s). */
#define EXPORT_OPSLIMIT		3
#define EXPORT_MEMLIMIT		((size_t) 64 * 1024 * 1024)
/* What an import accepts: libsodium's minimum up to a bound on memory. */
#define IMPORT_OPSLIMIT_MAX	16
#define IMPORT_MEMLIMIT_MAX	((size_t) 1024 * 1024 * 1024)

StaticAssertDecl(crypto_pwhash_SALTBYTES == 16, "salt length of the export format");

/*
 * Derive the wrapping key (sodium_malloc'd, LICDATA_KEY_BYTES) from a
 * passphrase.  The caller frees it with sodium_free.
 */
static uint8 *
keys_wrapping_key(const char *passphrase, size_t passlen, const uint8 *salt,
				  unsigned long long opslimit, size_t memlimit)
{
	uint8	   *wk = sodium_malloc(LICDATA_KEY_BYTES);

	if (wk == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory")));
	if (crypto_pwhash(wk, LICDATA_KEY_BYTES, passphrase, passlen, salt,
					  opslimit, memlimit, crypto_pwhash_ALG_ARGON2ID13) != 0)
	{
		sodium_free(wk);
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("could not derive a key from the passphrase"),
				 errdetail("Argon2id needs %zu MiB of memory.", memlimit / (1024 * 1024)),
				 errhidestmt(true)));
	}
	return wk;
}

/* Standard base64 of bin[0..len), palloc'd. */
static char *
keys_base64(const uint8 *bin, size_t len)
{
	size_t		n = sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_ORIGINAL);
	char	   *out = palloc(n);

	sodium_bin2base64(out, n, bin, len, sodium_base64_VARIANT_ORIGINAL);
	return out;
}

/*
 * licdata_keys_export
 *		The cluster's master key wrapped under passphrase, as the text
 *		described above (palloc'd).  The caller checks privileges and the
 *		passphrase's strength.
 */
char *
licdata_keys_export(const char *passphrase, size_t passlen)
{
	uint8		salt[crypto_pwhash_SALTBYTES];
	uint8		nonce[crypto_aead_xchacha20poly1305_ietf_NPUBBYTES];
	uint8		box[LICDATA_KEY_BYTES + crypto_aead_xchacha20poly1305_ietf_ABYTES];
	unsigned long long boxlen = 0;
	uint8	   *wk;
	char	   *ad;
	int			rc;

	keys_refresh();
	randombytes_buf(salt, sizeof(salt));
	randombytes_buf(nonce, sizeof(nonce));
	ad = psprintf("%s:%s:%d:%zu:%s", EXPORT_MAGIC, EXPORT_ALG, EXPORT_OPSLIMIT,
				  EXPORT_MEMLIMIT, keys_base64(salt, sizeof(salt)));

	wk = keys_wrapping_key(passphrase, passlen, salt, EXPORT_OPSLIMIT, EXPORT_MEMLIMIT);
	rc = crypto_aead_xchacha20poly1305_ietf_encrypt(box, &boxlen,
													vault->master, LICDATA_KEY_BYTES,
													(const uint8 *) ad, strlen(ad),
													NULL, nonce, wk);
	sodium_free(wk);
	if (rc != 0 || boxlen != sizeof(box))
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not wrap the master key")));
	return psprintf("%s:%s:%s", ad, keys_base64(nonce, sizeof(nonce)),
					keys_base64(box, sizeof(box)));
}

/* Report a malformed export (never echoing its content). */
static void
keys_malformed(const char *detail)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("exported master key is malformed"),
			 errdetail("%s", detail),
			 errhint("Pass the whole text licdata.export_master_key returned, unchanged."),
			 errhidestmt(true)));
}

/* Decode one base64 field of exactly len bytes into out. */
static void
keys_unbase64(const char *field, uint8 *out, size_t len, const char *name)
{
	size_t		got = 0;
	const char *end = NULL;

	if (sodium_base642bin(out, len, field, strlen(field), NULL, &got, &end,
						  sodium_base64_VARIANT_ORIGINAL) != 0 ||
		got != len || end != field + strlen(field))
		keys_malformed(psprintf("The %s is not %zu bytes of base64.", name, len));
}

/* A decimal field within [lo, hi]. */
static uint64
keys_number(const char *field, uint64 lo, uint64 hi, const char *name)
{
	uint64		v = 0;

	if (*field == '\0' || strlen(field) > 19)
		keys_malformed(psprintf("The %s is not a number.", name));
	for (const char *p = field; *p; p++)
	{
		if (*p < '0' || *p > '9')
			keys_malformed(psprintf("The %s is not a number.", name));
		v = v * 10 + (uint64) (*p - '0');
	}
	if (v < lo || v > hi)
		keys_malformed(psprintf("The %s is outside %llu..%llu.", name,
								(unsigned long long) lo, (unsigned long long) hi));
	return v;
}

/*
 * licdata_keys_import
 *		Unwrap an export with passphrase and make it the cluster's master
 *		key (atomically, every backend switches; see keys_replace).  A
 *		malformed text or a wrong passphrase raises an error and changes
 *		nothing.  The caller checks privileges.
 */
void
licdata_keys_import(const char *exported, const char *passphrase, size_t passlen)
{
	char	   *copy = pstrdup(exported);
	char	   *fields[EXPORT_FIELDS];
	int			n = 0;
	char	   *p = copy;
	uint64		opslimit;
	uint64		memlimit;
	uint8		salt[crypto_pwhash_SALTBYTES];
	uint8		nonce[crypto_aead_xchacha20poly1305_ietf_NPUBBYTES];
	uint8		box[LICDATA_KEY_BYTES + crypto_aead_xchacha20poly1305_ietf_ABYTES];
	unsigned long long keylen = 0;
	size_t		adlen;
	uint8	   *wk;
	uint8	   *key;
	int			rc;

	keys_sodium_init();
	/* surrounding white space (a trailing newline of a file) is not part of it */
	while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
		p++;
	for (char *e = p + strlen(p); e > p && (e[-1] == ' ' || e[-1] == '\t' ||
										   e[-1] == '\n' || e[-1] == '\r'); e--)
		e[-1] = '\0';
	fields[n++] = p;
	for (; *p; p++)
	{
		if (*p != ':')
			continue;
		if (n == EXPORT_FIELDS)
			keys_malformed(psprintf("It has more than %d fields separated by \":\".", EXPORT_FIELDS));
		*p = '\0';
		fields[n++] = p + 1;
	}
	if (n != EXPORT_FIELDS)
		keys_malformed(psprintf("It has %d field(s) separated by \":\", not %d.", n, EXPORT_FIELDS));
	if (strcmp(fields[0], EXPORT_MAGIC) != 0)
		keys_malformed("It does not begin with \"" EXPORT_MAGIC "\".");
	if (strcmp(fields[1], EXPORT_ALG) != 0)
		keys_malformed("Its key derivation is not \"" EXPORT_ALG "\".");
	opslimit = keys_number(fields[2], crypto_pwhash_OPSLIMIT_MIN, IMPORT_OPSLIMIT_MAX,
						   "Argon2id pass count");
	memlimit = keys_number(fields[3], crypto_pwhash_MEMLIMIT_MIN, IMPORT_MEMLIMIT_MAX,
						   "Argon2id memory size");
	keys_unbase64(fields[4], salt, sizeof(salt), "salt");
	keys_unbase64(fields[5], nonce, sizeof(nonce), "nonce");
	keys_unbase64(fields[6], box, sizeof(box), "wrapped key");
	/* the associated data is the text up to and including the salt */
	for (int i = 0; i < 4; i++)
		fields[i][strlen(fields[i])] = ':';
	adlen = (size_t) (fields[4] + strlen(fields[4]) - fields[0]);

	wk = keys_wrapping_key(passphrase, passlen, salt, opslimit, (size_t) memlimit);
	key = sodium_malloc(LICDATA_KEY_BYTES);
	if (key == NULL)
	{
		sodium_free(wk);
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory")));
	}
	rc = crypto_aead_xchacha20poly1305_ietf_decrypt(key, &keylen, NULL, box, sizeof(box),
													(const uint8 *) fields[0], adlen,
													nonce, wk);
	sodium_free(wk);
	if (rc != 0 || keylen != LICDATA_KEY_BYTES)
	{
		sodium_free(key);
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("could not unwrap the exported master key"),
				 errdetail("The passphrase is wrong, or the exported text was altered."),
				 errhint("The cluster's master key is unchanged."),
				 errhidestmt(true)));
	}
	PG_TRY();
	{
		keys_replace(key, "import");
	}
	PG_FINALLY();
	{
		sodium_free(key);
	}
	PG_END_TRY();
}
