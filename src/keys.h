/*-------------------------------------------------------------------------
 *
 * keys.h
 *	  The cluster's master key file and the per-licensee keys derived from
 *	  it (libsodium).  keys.c is the only file that reads or writes key
 *	  material; see its header for the derivation and the invariants.
 *
 *-------------------------------------------------------------------------
 */
#ifndef LICDATA_KEYS_H
#define LICDATA_KEYS_H

#include "licdata.h"

/* Relative to the data directory (the working directory of every process). */
#define LICDATA_MASTER_KEY_FILE		LICDATA_DIR "/master.key"

/* Length of the master key and of every derived key. */
#define LICDATA_KEY_BYTES			32

/* Longest output of licdata_keyed_hash (BLAKE2b-320). */
#define LICDATA_KEYED_HASH_BYTES	40

/*
 * What a derived key is for.  Each use has its own libsodium KDF context,
 * so a licensee's pseudonym, FPE and noise keys are independent.
 */
typedef enum LicdataKeyUse
{
	LICDATA_KEY_PSEUDONYM = 0,	/* BLAKE2b key of mask_pseudonym */
	LICDATA_KEY_FPE,			/* AES-256 key of mask_fpe / unmask_fpe */
	LICDATA_KEY_NOISE,			/* BLAKE2b key of mask_noise */
	LICDATA_KEY_AUDIT,			/* Ed25519 seed of the audit checkpoint key (key id 0) */
	LICDATA_KEY_NUM_USES
} LicdataKeyUse;

/* In the postmaster, from _PG_init: create pg_licdata/ and the key file. */
extern void licdata_keys_init_postmaster(void);

/*
 * A backend-local number that changes whenever this backend's view of the
 * master key changes (first load, or reload after a rotation anywhere in
 * the cluster).  Callers that keep state built from a derived key (the FPE
 * cipher context) rebuild it when this number moves.
 */
extern uint64 licdata_keys_epoch(void);

/*
 * The derived key of a licensee for a use: LICDATA_KEY_BYTES bytes in
 * read-only, locked, guarded memory.  The pointer is valid until the next
 * call of any function declared here; do not copy the key elsewhere.
 */
extern const uint8 *licdata_licensee_key(int64 key_id, LicdataKeyUse use);

/*
 * Keyed BLAKE2b of in[0..inlen) under the licensee's key for a use; writes
 * outlen (1..LICDATA_KEYED_HASH_BYTES) bytes, a prefix of the 40-byte
 * digest.  Allocation-free; meant for per-row use.
 */
extern void licdata_keyed_hash(int64 key_id, LicdataKeyUse use,
							   const void *in, size_t inlen,
							   uint8 *out, size_t outlen);

/*
 * Replace the master key file with a new random key (atomically and
 * durably) and tell every backend to reload it.  The caller checks
 * privileges.
 */
extern void licdata_keys_rotate(void);

/*
 * The master key wrapped under a passphrase (Argon2id + XChaCha20-Poly1305,
 * a versioned one-line text; see keys.c), palloc'd.  The caller checks
 * privileges and the passphrase.
 */
extern char *licdata_keys_export(const char *passphrase, size_t passlen);

/*
 * Unwrap an export and make it the master key, like a rotation (atomic,
 * every backend switches).  A malformed text or a wrong passphrase is an
 * error and changes nothing.  The caller checks privileges.
 */
extern void licdata_keys_import(const char *exported, const char *passphrase,
								size_t passlen);

#endif							/* LICDATA_KEYS_H */
