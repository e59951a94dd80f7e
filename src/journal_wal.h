/*-------------------------------------------------------------------------
 *
 * journal_wal.h
 *	  licdata's WAL resource manager: journal records made durable through
 *	  PostgreSQL's WAL (licdata.journal_sync = on, PostgreSQL 15 on).
 *
 * One WAL record (rmgr LICDATA_RMGR_ID, info XLOG_LICDATA_JOURNAL) carries
 * the images of one journal file's records as a backend had them when it
 * made them durable (journal.c, "Durability"): an xl_licdata_journal, then
 * 'nitems' items, each an xl_licdata_journal_item followed by 'nbytes'
 * bytes (a multiple of 8, so every item header stays 8-aligned within the
 * record's data).  An item is a whole record (its ring bytes, as they were)
 * or the 8-byte JR_PAD marker at the end of the ring.  See journal_wal.c
 * for what replay does with them.
 *
 *-------------------------------------------------------------------------
 */
#ifndef LICDATA_JOURNAL_WAL_H
#define LICDATA_JOURNAL_WAL_H

/*
 * The resource manager id.  It is written into every WAL record licdata
 * makes and must never change: a server replaying WAL looks it up by this
 * number.  Custom ids are 128-255; 128 is RM_EXPERIMENTAL_ID.  217 is
 * licdata's (to be entered in PostgreSQL's wiki list of custom WAL
 * resource managers before a release).
 */
#define LICDATA_RMGR_ID			217
#define LICDATA_RMGR_NAME		"licdata"

#define XLOG_LICDATA_JOURNAL	0x00	/* record images of one journal file */

#define XL_JOURNAL_NAME_LEN		48	/* "<16 hex>-<8 hex>-<8..16 hex>.jnl" + NUL */

typedef struct xl_licdata_journal
{
	uint64		node_id;		/* licdata_node_id of the writer */
	uint64		ring_size;		/* the file's ring size (checked on replay) */
	uint64		tail_seen;		/* the file's tail as the writer read it just
								 * before: the flusher had moved and committed
								 * every record before it */
	uint32		nitems;
	uint32		pad;
	char		file[XL_JOURNAL_NAME_LEN];	/* name in pg_licdata/journal */
} xl_licdata_journal;

typedef struct xl_licdata_journal_item
{
	uint64		lpos;			/* logical position in the ring */
	uint32		extent;			/* logical bytes it covers (a pad: to the
								 * ring's end) */
	uint32		nbytes;			/* bytes of image that follow */
} xl_licdata_journal_item;

StaticAssertDecl(sizeof(xl_licdata_journal) % 8 == 0, "items stay 8-aligned");
StaticAssertDecl(sizeof(xl_licdata_journal_item) == 16, "items stay 8-aligned");

/* licdata.journal_sync_method */
#define JOURNAL_SYNC_WAL		0	/* through the WAL (PostgreSQL 15 on, a primary) */
#define JOURNAL_SYNC_FDATASYNC	1	/* fdatasync of the backend's journal files */

/* journal_wal.c */
extern void licdata_journal_wal_init(void);
extern bool licdata_journal_wal_ready;
extern int	licdata_journal_sync_method;

#endif							/* LICDATA_JOURNAL_WAL_H */
