-- External payouts on a chain. Portable SQL: the same file runs on SQLite and PostgreSQL.

-- A payout sent on chain is an EIP-3009 authorization the wallet signs and the
-- relayer sends, followed to its end exactly like an x402 payment's: the row
-- names the payout it pays, so its end also finishes the payout.
ALTER TABLE x402_payments ADD COLUMN payout_id TEXT;

-- The background task looks for authorized external payouts on every poll.
CREATE INDEX payouts_open ON payouts (status, rail, created_at_ms);
