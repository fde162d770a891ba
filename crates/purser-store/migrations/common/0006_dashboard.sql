-- The dashboard: an optional owner password per wallet, and indexes for the
-- owner's pages. Portable SQL: the same file runs on SQLite and PostgreSQL.

-- The Argon2id PHC string of the password set at wallet creation (NULL: sign in
-- with the owner token only).
ALTER TABLE wallets ADD COLUMN password_hash TEXT;

-- The overview sums a wallet's committed spend over the last days by day and by
-- destination: this index covers those sums, so they never touch the table.
CREATE INDEX reservations_spend ON reservations(wallet_id, created_at_ms, status, amount, payee_host);
-- The payments page filtered by agent.
CREATE INDEX reservations_by_agent ON reservations(wallet_id, agent_id, created_at_ms);
-- The payouts page filtered by status.
CREATE INDEX payouts_by_status ON payouts(wallet_id, status, created_at_ms);
