ALTER TABLE reviews DROP COLUMN expired_at;
