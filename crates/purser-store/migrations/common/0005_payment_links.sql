-- AgentCharge: payment links, the payments they received, refunds and webhook
-- events. Portable SQL: the same file runs on SQLite and PostgreSQL. These rows
-- live beside the ledger: money moves only through reservations (a link payment
-- is the payer's x402 reservation committed to the merchant; a refund is a payout).

CREATE TABLE payment_links (
    id                TEXT PRIMARY KEY,
    wallet_id         TEXT NOT NULL REFERENCES wallets(id),
    agent_id          TEXT REFERENCES agents(id),
    amount            BIGINT NOT NULL CHECK (amount > 0),
    description       TEXT NOT NULL,
    resource_content  TEXT,
    resource_url      TEXT,
    expires_at_ms     BIGINT,
    max_uses          BIGINT CHECK (max_uses IS NULL OR max_uses > 0),
    -- Settled payments plus the one being settled: the atomic use claim.
    uses_count        BIGINT NOT NULL DEFAULT 0
        CHECK (uses_count >= 0 AND (max_uses IS NULL OR uses_count <= max_uses)),
    status            TEXT NOT NULL CHECK (status IN ('active', 'disabled')),
    webhook_url       TEXT,
    webhook_secret    TEXT,
    created_at_ms     BIGINT NOT NULL,
    updated_at_ms     BIGINT NOT NULL
);
CREATE INDEX payment_links_by_wallet ON payment_links (wallet_id, created_at_ms);

CREATE TABLE link_payments (
    id               TEXT PRIMARY KEY,
    link_id          TEXT NOT NULL REFERENCES payment_links(id),
    wallet_id        TEXT NOT NULL REFERENCES wallets(id),
    amount           BIGINT NOT NULL CHECK (amount > 0),
    network          TEXT NOT NULL,
    payer            TEXT NOT NULL,
    nonce            TEXT NOT NULL,
    tx_hash          TEXT,
    status           TEXT NOT NULL CHECK (status IN ('settling', 'settled', 'failed')),
    refunded_amount  BIGINT NOT NULL DEFAULT 0
        CHECK (refunded_amount >= 0 AND refunded_amount <= amount),
    created_at_ms    BIGINT NOT NULL,
    updated_at_ms    BIGINT NOT NULL
);
-- One live payment per authorization: a replayed header finds the first.
CREATE UNIQUE INDEX link_payments_by_nonce ON link_payments (network, payer, nonce)
    WHERE status <> 'failed';
CREATE INDEX link_payments_by_wallet ON link_payments (wallet_id, created_at_ms);
CREATE INDEX link_payments_by_link ON link_payments (link_id, created_at_ms);
CREATE INDEX link_payments_settling ON link_payments (status, updated_at_ms);

CREATE TABLE refunds (
    id             TEXT PRIMARY KEY,
    payment_id     TEXT NOT NULL REFERENCES link_payments(id),
    wallet_id      TEXT NOT NULL REFERENCES wallets(id),
    agent_id       TEXT NOT NULL REFERENCES agents(id),
    amount         BIGINT NOT NULL CHECK (amount > 0),
    to_address     TEXT NOT NULL,
    reason         TEXT,
    payout_id      TEXT NOT NULL UNIQUE,
    approval_id    TEXT,
    status         TEXT NOT NULL
        CHECK (status IN ('pending', 'settled', 'cancelled', 'expired', 'failed')),
    settlement     TEXT,
    created_at_ms  BIGINT NOT NULL,
    updated_at_ms  BIGINT NOT NULL
);
CREATE INDEX refunds_by_wallet ON refunds (wallet_id, created_at_ms);
CREATE INDEX refunds_open ON refunds (status, created_at_ms);

-- The webhook outbox: an event is written in the same transaction as what it
-- announces, and delivered until the receiver answers 2xx (at least once).
CREATE TABLE webhook_events (
    id                  TEXT PRIMARY KEY,
    wallet_id           TEXT NOT NULL REFERENCES wallets(id),
    link_id             TEXT NOT NULL REFERENCES payment_links(id),
    url                 TEXT NOT NULL,
    event_type          TEXT NOT NULL,
    payload             TEXT NOT NULL,
    status              TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts            BIGINT NOT NULL DEFAULT 0,
    next_attempt_at_ms  BIGINT NOT NULL,
    last_error          TEXT,
    created_at_ms       BIGINT NOT NULL,
    delivered_at_ms     BIGINT
);
CREATE INDEX webhook_events_due ON webhook_events (status, next_attempt_at_ms);
CREATE INDEX webhook_events_by_wallet ON webhook_events (wallet_id, created_at_ms);
