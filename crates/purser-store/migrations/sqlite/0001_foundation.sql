-- Foundation: wallets, agents, the double-entry ledger, idempotency, the audit chain.
-- Amounts and balances are atomic USDC units in 64-bit integers; times are Unix ms.

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE wallets (
    id               TEXT PRIMARY KEY,
    name             TEXT NOT NULL,
    currency         TEXT NOT NULL,
    address          TEXT NOT NULL UNIQUE,
    owner_token_hash TEXT NOT NULL UNIQUE,
    sealed_key       TEXT NOT NULL,
    created_at_ms    INTEGER NOT NULL
);

CREATE TABLE agents (
    id              TEXT PRIMARY KEY,
    wallet_id       TEXT NOT NULL REFERENCES wallets(id),
    name            TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('active', 'revoked')),
    credential_hash TEXT NOT NULL UNIQUE,
    created_at_ms   INTEGER NOT NULL,
    revoked_at_ms   INTEGER
);
CREATE INDEX agents_by_wallet ON agents(wallet_id, created_at_ms);

CREATE TABLE accounts (
    id        TEXT PRIMARY KEY,
    wallet_id TEXT REFERENCES wallets(id),
    kind      TEXT NOT NULL,
    currency  TEXT NOT NULL,
    balance   INTEGER NOT NULL DEFAULT 0,
    -- Defence in depth: the conditional updates already keep wallets at or above zero.
    CHECK (kind NOT IN ('available', 'reserved') OR balance >= 0)
);
CREATE INDEX accounts_by_wallet ON accounts(wallet_id);

INSERT INTO accounts (id, wallet_id, kind, currency, balance) VALUES
    ('system/sandbox_onramp/USDC', NULL, 'sandbox_onramp', 'USDC', 0),
    ('system/external_payouts/USDC', NULL, 'external_payouts', 'USDC', 0),
    ('system/fees/USDC', NULL, 'fees', 'USDC', 0);

CREATE TABLE transfers (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    id            TEXT NOT NULL UNIQUE,
    from_account  TEXT NOT NULL REFERENCES accounts(id),
    to_account    TEXT NOT NULL REFERENCES accounts(id),
    amount        INTEGER NOT NULL CHECK (amount > 0),
    currency      TEXT NOT NULL,
    kind          TEXT NOT NULL,
    memo          TEXT,
    created_at_ms INTEGER NOT NULL
);
CREATE INDEX transfers_by_from ON transfers(from_account, seq);
CREATE INDEX transfers_by_to ON transfers(to_account, seq);

CREATE TRIGGER transfers_no_update BEFORE UPDATE ON transfers
BEGIN SELECT RAISE(ABORT, 'transfers are immutable'); END;
CREATE TRIGGER transfers_no_delete BEFORE DELETE ON transfers
BEGIN SELECT RAISE(ABORT, 'transfers are immutable'); END;

CREATE TABLE idempotency (
    scope         TEXT NOT NULL,
    key           TEXT NOT NULL,
    fingerprint   TEXT NOT NULL,
    outcome       TEXT,
    created_at_ms INTEGER NOT NULL,
    PRIMARY KEY (scope, key)
);

CREATE TABLE audit_log (
    seq       INTEGER PRIMARY KEY,
    at_ms     INTEGER NOT NULL,
    actor     TEXT NOT NULL,
    action    TEXT NOT NULL,
    wallet_id TEXT,
    subject   TEXT NOT NULL,
    details   TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL
);
CREATE INDEX audit_by_wallet ON audit_log(wallet_id, seq);

CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit records are immutable'); END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit records are immutable'); END;

CREATE TABLE audit_head (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    seq  INTEGER NOT NULL,
    hash TEXT NOT NULL
);
INSERT INTO audit_head (id, seq, hash)
VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');
