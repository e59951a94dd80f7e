/*
 * licdata 1.0 -> 1.1 (ALTER EXTENSION licdata UPDATE).
 *
 * Assembled from schema/upgrade/1.0--1.1/NN_*.sql in order, one file per area of
 * the 1.1 change.  Each file brings a 1.0 installation to exactly what
 * schema/NN_*.sql creates for a fresh 1.1 install: the same objects, columns in
 * the same order (new columns are appended at the end of their table in both),
 * the same grants; every licence, mask and record kept.
 */
