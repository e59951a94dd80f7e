-- test/demo/expect_error.sql -- included (\i) right after a statement that must be
-- refused with SQLSTATE :expect.  Prints the outcome.  On any other outcome it sets
-- demo_unexpected and ON_ERROR_STOP, so that psql stops at the next error and at the
-- latest at the including file's end (expect_error_end.sql), with exit status 3.
\set got :SQLSTATE
SELECT :'got' = :'expect' AS demo_as_expected \gset
\if :demo_as_expected
\echo '    => refused as expected, SQLSTATE' :got
\else
\echo '    => UNEXPECTED: SQLSTATE' :got 'where' :expect 'was expected; stopping the demo'
\set demo_unexpected :expect
\set ON_ERROR_STOP on
\endif
\echo
