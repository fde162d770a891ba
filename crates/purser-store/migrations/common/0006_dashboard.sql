-- The dashboard: an optional owner password per wallet, and indexes for the
-- owner's pages. Portable SQL: the same file runs on SQLite and PostgreSQL.

-- The Argon2id PHC string of the password set at wallet creation (NULL: sign in
-- with the owner token only).
ALTER TABLE wallets ADD COLUMN password_hash TEXT;

-- The overview sums a wallet's committed spend over the last days by day and by
-- destination: this index covers those sums (one status, a range of time), so
-- they never touch the table. It also lists the payments page filtered by status,
-- newest first.
CREATE INDEX reservations_spend ON reservations(wallet_id, status, created_at_ms, amount, payee_host);
-- The payments page filtered by agent, by kind or by payee host, newest first: a
-- filter that matches few payments reads those, not the whole wallet.
CREATE INDEX reservations_by_agent ON reservations(wallet_id, agent_id, created_at_ms);
CREATE INDEX reservations_by_kind ON reservations(wallet_id, kind, created_at_ms);
CREATE INDEX reservations_by_host ON reservations(wallet_id, payee_host, created_at_ms);
-- The payouts page filtered by status.
CREATE INDEX payouts_by_status ON payouts(wallet_id, status, created_at_ms);
