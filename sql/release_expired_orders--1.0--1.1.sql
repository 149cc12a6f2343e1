-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION release_expired_orders UPDATE TO '1.1'" to load this file. \quit

-- Upgrade from 1.0.  Every change below is also in release_expired_orders--1.1.sql;
-- test/t/040_upgrade.pl compares an upgraded installation with a fresh one.
