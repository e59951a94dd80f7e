/*
 * test/bench/slowflush.c -- LD_PRELOAD shim for test/bench/journal_sync.sh
 * (LICDATA_BENCH_SLOW_FLUSH_US): a model of a disk whose cache flush takes
 * a fixed time and runs one at a time.  Every fdatasync and fsync of the
 * processes it is loaded into first takes an exclusive flock on the file
 * LICDATA_BENCH_SLOW_FLUSH_LOCK (shared by all of them), sleeps
 * LICDATA_BENCH_SLOW_FLUSH_US microseconds, then runs.  Without those
 * variables it changes nothing.  PostgreSQL's WAL flushes and licdata's
 * journal syncs pay the same price, so the rates compare how many flushes
 * each needs, not how fast the shared disk happens to be that second.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/file.h>
#include <unistd.h>

static int
slow_flush(int (*real) (int), int fd)
{
	const char *us = getenv("LICDATA_BENCH_SLOW_FLUSH_US");
	const char *lock = getenv("LICDATA_BENCH_SLOW_FLUSH_LOCK");
	int			lk = -1;
	int			rc;

	if (us == NULL || lock == NULL)
		return real(fd);
	lk = open(lock, O_RDWR | O_CREAT, 0666);
	if (lk >= 0)
		(void) flock(lk, LOCK_EX);
	usleep((useconds_t) atoi(us));
	rc = real(fd);
	if (lk >= 0)
		close(lk);				/* releases the lock */
	return rc;
}

int
fdatasync(int fd)
{
	static int	(*real) (int);

	if (real == NULL)
		real = (int (*) (int)) dlsym(RTLD_NEXT, "fdatasync");
	return slow_flush(real, fd);
}

int
fsync(int fd)
{
	static int	(*real) (int);

	if (real == NULL)
		real = (int (*) (int)) dlsym(RTLD_NEXT, "fsync");
	return slow_flush(real, fd);
}
