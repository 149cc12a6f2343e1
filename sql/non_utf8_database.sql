--
-- The job writes the old function's Chinese notes and notifications, which
-- only a UTF8 database holds: in any other database CREATE EXTENSION fails
-- at once with a clear error (feature_not_supported) and creates nothing.
--
\set SHOW_CONTEXT never
SELECT current_database() AS regress_db \gset
CREATE DATABASE regress_reo_latin1 TEMPLATE template0 ENCODING 'LATIN1' LOCALE 'C';
CREATE DATABASE regress_reo_sql_ascii TEMPLATE template0 ENCODING 'SQL_ASCII' LOCALE 'C';

\c regress_reo_latin1
CREATE EXTENSION release_expired_orders;
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) AS extensions FROM pg_extension WHERE extname = 'release_expired_orders';
SELECT count(*) AS schemas FROM pg_namespace WHERE nspname = 'release_expired_orders';

\c regress_reo_sql_ascii
CREATE EXTENSION release_expired_orders;
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) AS extensions FROM pg_extension WHERE extname = 'release_expired_orders';

\c :regress_db
DROP DATABASE regress_reo_latin1;
DROP DATABASE regress_reo_sql_ascii;
