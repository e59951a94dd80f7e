/*
 * 50_prod: data products (issue 13).  The columns here; the products table,
 * its API, the views and the flusher's step in 51_prod_products.sql (the
 * same file as schema/70_products.sql).
 */
