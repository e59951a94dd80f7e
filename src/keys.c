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
 *	  it (licdata_keys_rotate).
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
 *	- For keyed hashing, the vault also caches the BLAKE2b state after the
 *	  key block, so a pseudonym costs one compression for short values; the
 *	  per-call copy of that state lives in a second guarded buffer.
 *	- Both buffers are wiped and freed at backend exit (sodium_free wipes).
 *	- Rotation writes the new file (temporary file, fsync, rename, fsync of
 *	  the directory) and only then bumps licdata_shared->key_generation.  A
 *	  backend reads the generation before it reads the file, so it can at
 *	  worst load the new key under the old generation number and load it
 *	  again, never keep an old key under the new number.
 *	- No key byte is ever written to a message, the log, or returned to SQL.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

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

/* KDF context (exactly crypto_kdf_CONTEXTBYTES = 8 characters) per use. */
static const char *const key_contexts[LICDATA_KEY_NUM_USES] = {
	"ldpseud1",					/* LICDATA_KEY_PSEUDONYM */
	"ldffone1",					/* LICDATA_KEY_FPE */
	"ldnoise1",					/* LICDATA_KEY_NOISE */
};

typedef struct KeyCacheEntry
{
	crypto_generichash_state hash_state;	/* BLAKE2b after the key block */
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
static crypto_generichash_state *hash_scratch = NULL;

/* Bookkeeping (not secret) kept outside the vault. */
static bool master_loaded = false;
static uint64 loaded_generation = 0;
static uint64 local_epoch = 0;
static int	last_hit = 0;
static int	next_victim = 0;

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
	if (hash_scratch != NULL)
		sodium_free(hash_scratch);
	hash_scratch = NULL;
	master_loaded = false;
}

/* Allocate the vault and the hash scratch buffer on first use. */
static void
keys_alloc(void)
{
	keys_sodium_init();
	vault = sodium_malloc(sizeof(KeyVault));
	hash_scratch = sodium_malloc(sizeof(crypto_generichash_state));
	if (vault == NULL || hash_scratch == NULL)
	{
		if (vault != NULL)
			sodium_free(vault);
		if (hash_scratch != NULL)
			sodium_free(hash_scratch);
		vault = NULL;
		hash_scratch = NULL;
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory"),
				 errdetail("Could not allocate protected memory for licdata's keys.")));
	}
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
									key_contexts[use], vault->master) == 0 &&
		crypto_generichash_init(&e->hash_state, e->key, LICDATA_KEY_BYTES,
								LICDATA_KEYED_HASH_BYTES) == 0;
	if (ok)
	{
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

void
licdata_keyed_hash(int64 key_id, LicdataKeyUse use, const void *in, size_t inlen,
				   uint8 *out, size_t outlen)
{
	KeyCacheEntry *e = keys_entry(key_id, use);
	uint8		digest[LICDATA_KEYED_HASH_BYTES];

	Assert(outlen >= 1 && outlen <= LICDATA_KEYED_HASH_BYTES);
	memcpy(hash_scratch, &e->hash_state, sizeof(crypto_generichash_state));
	if (crypto_generichash_update(hash_scratch, in, inlen) != 0 ||
		crypto_generichash_final(hash_scratch, digest, LICDATA_KEYED_HASH_BYTES) != 0)
	{
		sodium_memzero(hash_scratch, sizeof(crypto_generichash_state));
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not compute a keyed hash")));
	}
	memcpy(out, digest, outlen);
}

/*
 * licdata_keys_rotate
 *		Replace the master key with 32 new random bytes and make every
 *		backend reload it.
 *
 * Not transactional: the new key is in place when this returns, even if
 * the calling transaction rolls back.  Concurrent rotations are safe: the
 * last rename wins and every backend ends up on the file's key, because
 * each rotation bumps the generation after its rename.
 */
void
licdata_keys_rotate(void)
{
	uint8	   *key;
	char		tmppath[MAXPGPATH];

	if (licdata_shared == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_LD_NOT_READY),
				 errmsg("cannot rotate the master key because licdata is not preloaded"),
				 errhint("Add licdata to shared_preload_libraries in postgresql.conf and restart the server.")));
	keys_sodium_init();

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
