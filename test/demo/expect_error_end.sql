-- test/demo/expect_error_end.sql -- included at the end of a file that uses
-- expect_error.sql: fails (psql exit status 3) if any refusal was not as expected.
\set ON_ERROR_STOP on
\if :{?demo_unexpected}
DO $$ BEGIN RAISE EXCEPTION 'demo: a statement was not refused as expected'; END $$;
\endif
