-- Intent mandates and the authorization path: reservations, approvals, wallet
-- policies, agents' monthly totals, payouts. Portable SQL: the same file runs on
-- SQLite and PostgreSQL. Every mutable row has a version; the committer updates a
-- row only at the version it loaded.

CREATE TABLE mandates (
    id                TEXT PRIMARY KEY,
    wallet_id         TEXT NOT NULL REFERENCES wallets(id),
    agent_id          TEXT NOT NULL REFERENCES agents(id),
    description       TEXT NOT NULL,
    category          TEXT,
    currency          TEXT NOT NULL,
    limit_amount      BIGINT NOT NULL CHECK (limit_amount > 0),
    max_amount_per_tx BIGINT CHECK (max_amount_per_tx IS NULL OR max_amount_per_tx > 0),
    host_allowlist    TEXT NOT NULL,
    valid_from_ms     BIGINT NOT NULL,
    valid_until_ms    BIGINT NOT NULL,
    nonce             TEXT NOT NULL,
    status            TEXT NOT NULL CHECK (status IN ('pending_signature', 'signed', 'rejected', 'revoked')),
    spent_amount      BIGINT NOT NULL,
    pending_amount    BIGINT NOT NULL,
    mandate_hash      TEXT,
    signature         TEXT,
    signer            TEXT,
    signed_at_ms      BIGINT,
    created_at_ms     BIGINT NOT NULL,
    updated_at_ms     BIGINT NOT NULL,
    version           BIGINT NOT NULL,
    -- Defence in depth: the committer never lets a mandate go over budget.
    CHECK (spent_amount >= 0 AND pending_amount >= 0 AND spent_amount + pending_amount <= limit_amount)
);
CREATE INDEX mandates_by_agent ON mandates(agent_id, status, valid_until_ms);
CREATE INDEX mandates_by_wallet ON mandates(wallet_id, created_at_ms);

CREATE TABLE reservations (
    id             TEXT PRIMARY KEY,
    wallet_id      TEXT NOT NULL REFERENCES wallets(id),
    agent_id       TEXT NOT NULL REFERENCES agents(id),
    mandate_id     TEXT REFERENCES mandates(id),
    approval_id    TEXT,
    amount         BIGINT NOT NULL CHECK (amount > 0),
    payee_host     TEXT,
    payee_address  TEXT,
    purpose        TEXT NOT NULL,
    kind           TEXT NOT NULL,
    status         TEXT NOT NULL CHECK (status IN ('held', 'committed', 'released')),
    settlement     TEXT,
    release_reason TEXT,
    created_at_ms  BIGINT NOT NULL,
    updated_at_ms  BIGINT NOT NULL,
    version        BIGINT NOT NULL
);
CREATE INDEX reservations_by_wallet ON reservations(wallet_id, created_at_ms);
CREATE INDEX reservations_by_mandate ON reservations(mandate_id);

CREATE TABLE approvals (
    id            TEXT PRIMARY KEY,
    wallet_id     TEXT NOT NULL REFERENCES wallets(id),
    agent_id      TEXT NOT NULL REFERENCES agents(id),
    amount        BIGINT NOT NULL CHECK (amount > 0),
    payee_host    TEXT,
    payee_address TEXT,
    purpose       TEXT NOT NULL,
    kind          TEXT NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'denied', 'used')),
    created_at_ms BIGINT NOT NULL,
    expires_at_ms BIGINT NOT NULL,
    decided_at_ms BIGINT,
    version       BIGINT NOT NULL
);
CREATE INDEX approvals_by_wallet ON approvals(wallet_id, status, created_at_ms);

CREATE TABLE policies (
    wallet_id TEXT PRIMARY KEY REFERENCES wallets(id),
    policy    TEXT NOT NULL,
    version   BIGINT NOT NULL
);

CREATE TABLE agent_months (
    agent_id TEXT NOT NULL REFERENCES agents(id),
    month    TEXT NOT NULL,
    spent    BIGINT NOT NULL CHECK (spent >= 0),
    pending  BIGINT NOT NULL CHECK (pending >= 0),
    version  BIGINT NOT NULL,
    PRIMARY KEY (agent_id, month)
);

CREATE TABLE payouts (
    wallet_id      TEXT NOT NULL REFERENCES wallets(id),
    id             TEXT NOT NULL,
    agent_id       TEXT NOT NULL REFERENCES agents(id),
    to_address     TEXT NOT NULL,
    amount         BIGINT NOT NULL CHECK (amount > 0),
    mandate_id     TEXT,
    rail           TEXT NOT NULL CHECK (rail IN ('ledger', 'external')),
    status         TEXT NOT NULL,
    reservation_id TEXT,
    approval_id    TEXT,
    settlement     TEXT,
    failure_reason TEXT,
    created_at_ms  BIGINT NOT NULL,
    updated_at_ms  BIGINT NOT NULL,
    version        BIGINT NOT NULL,
    PRIMARY KEY (wallet_id, id)
);
CREATE INDEX payouts_by_wallet ON payouts(wallet_id, created_at_ms);

CREATE INDEX wallets_by_address ON wallets(LOWER(address));
