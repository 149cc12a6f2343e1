-- A long transaction on one product's row, longer than the job's
-- lock_timeout (100ms in the soak): the job's orders of that product fail
-- with 55P03, stay pending and are released by a later run.
\set n random(1, :products)
BEGIN;
SELECT stock FROM products WHERE id = (SELECT product_id FROM soak_products WHERE n = :n) FOR UPDATE;
\sleep 300 ms
END;
\sleep 700 ms
