/*
 * 50_prod: data products (issue 13).  The columns here; the products table,
 * its API, the views and the flusher's step in 51_prod_products.sql (the
 * same file as schema/70_products.sql).
 */
ALTER TABLE licdata.licences ALTER COLUMN dataset DROP NOT NULL;
ALTER TABLE licdata.licences ADD COLUMN product regprocedure;
ALTER TABLE licdata.licences ADD COLUMN max_calls_per_day bigint CHECK (max_calls_per_day > 0);
