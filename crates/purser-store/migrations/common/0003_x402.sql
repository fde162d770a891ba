-- x402 on a chain. Portable SQL: the same file runs on SQLite and PostgreSQL.

-- The facilitator's settlements, one per (network, payer, nonce): what makes
-- /settle idempotent. The chain itself refuses a nonce twice; this table makes a
-- repeated /settle answer with the first one's transaction instead of an error.
CREATE TABLE x402_settlements (
    network        TEXT NOT NULL,
    payer          TEXT NOT NULL,
    nonce          TEXT NOT NULL,
    pay_to         TEXT NOT NULL,
    amount         BIGINT NOT NULL CHECK (amount > 0),
    status         TEXT NOT NULL CHECK (status IN ('submitting', 'pending', 'settled', 'failed')),
    tx_hash        TEXT,
    error_reason   TEXT,
    created_at_ms  BIGINT NOT NULL,
    updated_at_ms  BIGINT NOT NULL,
    PRIMARY KEY (network, payer, nonce)
);

-- The buyer side: each EIP-3009 authorization a wallet signed, under the
-- reservation the authorization path made for it. Its nonce is derived from the
-- reservation, so the chain's authorizationState(payer, nonce) says whether the
-- reservation's money left.
CREATE TABLE x402_payments (
    reservation_id  TEXT PRIMARY KEY REFERENCES reservations(id),
    wallet_id       TEXT NOT NULL REFERENCES wallets(id),
    agent_id        TEXT NOT NULL REFERENCES agents(id),
    network         TEXT NOT NULL,
    pay_to          TEXT NOT NULL,
    payer           TEXT NOT NULL,
    amount          BIGINT NOT NULL CHECK (amount > 0),
    nonce           TEXT NOT NULL,
    valid_before    BIGINT NOT NULL,
    url             TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('signed', 'settled', 'failed')),
    tx_hash         TEXT,
    created_at_ms   BIGINT NOT NULL,
    updated_at_ms   BIGINT NOT NULL,
    UNIQUE (payer, nonce)
);
CREATE INDEX x402_payments_open ON x402_payments (status, valid_before);

-- Chain deposits seen, one per log: scanning the same blocks twice records nothing twice.
CREATE TABLE chain_deposits (
    network        TEXT NOT NULL,
    tx_hash        TEXT NOT NULL,
    log_index      BIGINT NOT NULL,
    wallet_id      TEXT NOT NULL REFERENCES wallets(id),
    amount         BIGINT NOT NULL,
    block_number   BIGINT NOT NULL,
    transfer_id    TEXT,
    created_at_ms  BIGINT NOT NULL,
    PRIMARY KEY (network, tx_hash, log_index)
);

-- Where on-chain deposits come from (it runs negative by what wallets received).
INSERT INTO accounts (id, wallet_id, kind, currency, balance) VALUES
    ('system/chain_deposits/USDC', NULL, 'chain_deposits', 'USDC', 0);
