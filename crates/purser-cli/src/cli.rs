//! The command line, declared with clap. Every value a command needs can come
//! from a flag, an environment variable or the config file, in that order.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Purser: payment infrastructure for AI agents.
#[derive(Debug, Parser)]
#[command(name = "purser", version, about, propagate_version = true)]
pub(crate) struct Cli {
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    pub(crate) json: bool,

    /// The config file (default: $XDG_CONFIG_HOME/purser/config.toml).
    #[arg(long, global = true, env = "PURSER_CONFIG", value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,

    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run the Purser server.
    Serve(Box<ServeArgs>),
    /// Walk through Purser's story on a throwaway embedded server.
    Demo(DemoArgs),
    /// Create, fund and inspect wallets.
    #[command(subcommand)]
    Wallet(WalletCommand),
    /// Register, list, revoke agents; get agent tokens.
    #[command(subcommand)]
    Agent(AgentCommand),
    /// Intent mandates: draft (agent), approve / reject / revoke (owner), verify.
    #[command(subcommand)]
    Mandate(MandateCommand),
    /// The owner's per-payment approvals (when no mandate covers a payment).
    #[command(subcommand)]
    Approvals(ApprovalsCommand),
    /// Pay USDC out to an address (agent), or show a payout's status.
    Payout(PayoutArgs),
    /// AgentCharge payment links: get paid by agents (create, list, get, update,
    /// disable, payments).
    #[command(subcommand)]
    Link(LinkCommand),
    /// Payments the wallet received through its payment links.
    #[command(subcommand)]
    Received(ReceivedCommand),
    /// Refunds of received payments: started by the merchant's agent, authorized
    /// by the owner.
    #[command(subcommand)]
    Refund(RefundCommand),
    /// The wallet's webhook events and their delivery (owner).
    #[command(subcommand)]
    Webhooks(WebhooksCommand),
    /// The authorization path directly: authorize, commit or release a payment.
    #[command(subcommand)]
    Payment(PaymentCommand),
    /// The wallet's policy on top of every mandate (owner).
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Operator checks of the ledger (reads the database directly).
    #[command(subcommand)]
    Ledger(LedgerCommand),
    /// The tamper-evident audit trail.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Measure hot paths on this machine.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Fetch a URL like curl; pay its x402 402 from the wallet (agent), through the
    /// one authorization path.
    Fetch(FetchArgs),
    /// Serve the agent's wallet as MCP tools over stdio, for MCP clients (Claude,
    /// Cursor, agent frameworks). Uses the agent credential from flags, env or the
    /// config file.
    Mcp(McpArgs),
    /// A local chain for development: anvil with TestUSDC deployed and funded.
    Devnet(DevnetArgs),
    /// Put x402 payments in front of an existing API (Monetize): a reverse proxy
    /// that prices routes, settles through a facilitator and serves /skill.md.
    Gateway(Box<GatewayArgs>),
}

/// `purser gateway`. Unset values fall back to the routes file's `[gateway]`
/// table, then to defaults.
#[derive(Debug, Clone, Args)]
pub(crate) struct GatewayArgs {
    /// The routes file (monetize.toml): `[service]`, `[[route]]`, optional `[gateway]`.
    #[arg(long, env = "PURSER_GATEWAY_ROUTES", value_name = "FILE")]
    pub(crate) routes: PathBuf,
    /// The API behind the gateway, e.g. http://127.0.0.1:3000.
    #[arg(long, env = "PURSER_GATEWAY_UPSTREAM", value_name = "URL")]
    pub(crate) upstream: Option<String>,
    /// The x402 facilitator (Purser's: <server>/facilitator).
    #[arg(long, env = "PURSER_GATEWAY_FACILITATOR", value_name = "URL")]
    pub(crate) facilitator: Option<String>,
    /// Where to listen [default: 127.0.0.1:4021].
    #[arg(long, env = "PURSER_GATEWAY_LISTEN", value_name = "ADDR")]
    pub(crate) listen: Option<String>,
    /// The gateway's public base URL [default: http:// and the request's Host].
    #[arg(long, env = "PURSER_GATEWAY_PUBLIC_URL", value_name = "URL")]
    pub(crate) public_url: Option<String>,
    /// How long one call may take, until the upstream's answer ends [default: 30000].
    #[arg(long, env = "PURSER_GATEWAY_TIMEOUT_MS")]
    pub(crate) timeout_ms: Option<u64>,
    /// The largest request body accepted [default: 1048576].
    #[arg(long, env = "PURSER_GATEWAY_MAX_BODY_BYTES")]
    pub(crate) max_body_bytes: Option<usize>,
    /// How long in-flight calls may take to finish on shutdown [default: 30000].
    #[arg(long, env = "PURSER_GATEWAY_SHUTDOWN_GRACE_MS")]
    pub(crate) shutdown_grace_ms: Option<u64>,
    /// Log format [default: text].
    #[arg(long, env = "PURSER_LOG_FORMAT", value_enum)]
    pub(crate) log_format: Option<LogFormat>,
}

/// `purser fetch URL …`
#[derive(Debug, Clone, Args)]
pub(crate) struct FetchArgs {
    /// The URL.
    pub(crate) url: String,
    /// The HTTP method (default GET, or POST with --data).
    #[arg(short = 'X', long = "request", value_name = "METHOD")]
    pub(crate) method: Option<String>,
    /// A request header, `Name: value` (repeatable).
    #[arg(short = 'H', long = "header", value_name = "HEADER")]
    pub(crate) headers: Vec<String>,
    /// The request body (`@FILE` reads a file); valid JSON goes as `application/json`
    /// unless -H sets a Content-Type.
    #[arg(short = 'd', long = "data", value_name = "DATA")]
    pub(crate) data: Option<String>,
    /// Show the response status and headers before the body.
    #[arg(short = 'i', long = "include")]
    pub(crate) include: bool,
    /// A mandate to pay under (default: the tightest eligible one).
    #[arg(long)]
    pub(crate) mandate: Option<String>,
    /// The most to pay, e.g. 0.05; a higher price is refused.
    #[arg(long, value_name = "USDC")]
    pub(crate) max_amount: Option<String>,
    /// Why, in your words (default: "x402 payment for <url>").
    #[arg(long)]
    pub(crate) purpose: Option<String>,
    /// An approval your human gave for this payment.
    #[arg(long)]
    pub(crate) approval: Option<String>,
    #[command(flatten)]
    pub(crate) client: ClientArgs,
}

/// `purser mcp`
#[derive(Debug, Clone, Args)]
pub(crate) struct McpArgs {
    #[command(flatten)]
    pub(crate) client: ClientArgs,
}

/// `purser devnet`
#[derive(Debug, Clone, Args)]
pub(crate) struct DevnetArgs {
    /// anvil's port.
    #[arg(long, default_value_t = 8545)]
    pub(crate) port: u16,
    /// Where to write the chain config (read by `purser serve --chain local`).
    #[arg(long, default_value = crate::config::DEFAULT_DEVNET_CONFIG)]
    pub(crate) config_out: PathBuf,
    /// The contracts' forge project (installed and built when needed).
    #[arg(long, default_value = "contracts")]
    pub(crate) contracts: PathBuf,
    /// The token's EIP-712 name ("USD Coin" as on Base; "USDC" as on Base Sepolia).
    #[arg(long, default_value = "USD Coin")]
    pub(crate) token_name: String,
    /// Fund an address with test USDC: `0xADDRESS` (1000 USDC) or `0xADDRESS=AMOUNT` (repeatable).
    #[arg(long, value_name = "ADDRESS[=USDC]")]
    pub(crate) fund: Vec<String>,
    /// Deploy, fund, write the config, then stop anvil instead of serving it.
    #[arg(long)]
    pub(crate) once: bool,
}

/// Where the API is and who is calling.
#[derive(Debug, Clone, Args)]
pub(crate) struct ClientArgs {
    /// The server's base URL (default: the config file's, else http://127.0.0.1:8402).
    #[arg(long, env = "PURSER_SERVER", value_name = "URL")]
    pub(crate) server: Option<String>,
    /// An owner token, an agent JWT, or an agent credential (with --agent-id).
    #[arg(
        long,
        env = "PURSER_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    pub(crate) token: Option<String>,
    /// The Agent ID, when --token is an agent credential to exchange for a JWT.
    #[arg(long, env = "PURSER_AGENT_ID", value_name = "AGENT_ID")]
    pub(crate) agent_id: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub(crate) struct WalletSelect {
    /// The wallet (default: the config file's, else the token's own wallet).
    #[arg(long, env = "PURSER_WALLET_ID", value_name = "WALLET_ID")]
    pub(crate) wallet: Option<String>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum WalletCommand {
    /// Create a wallet; saves the server, wallet id and owner token to the config file.
    Create {
        /// A name for the wallet.
        #[arg(long)]
        name: String,
        /// Read a password for the dashboard from standard input (its first line,
        /// 12-256 characters); `PURSER_DASHBOARD_PASSWORD` works too. The owner
        /// token signs in to the dashboard either way.
        #[arg(long)]
        password_stdin: bool,
        /// Do not write the config file.
        #[arg(long)]
        no_save: bool,
        /// Idempotency key (default: a fresh random one).
        #[arg(long)]
        idempotency_key: Option<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Add test USDC from the sandbox on-ramp.
    Fund {
        /// How much, e.g. 100 or 0.25.
        #[arg(long)]
        amount: String,
        /// Idempotency key (default: a fresh random one).
        #[arg(long)]
        idempotency_key: Option<String>,
        #[command(flatten)]
        wallet: WalletSelect,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Show the wallet's balances.
    Balance {
        #[command(flatten)]
        wallet: WalletSelect,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// List the wallet's ledger transfers, newest first.
    Transfers {
        /// How many.
        #[arg(long, default_value_t = 20)]
        limit: u32,
        #[command(flatten)]
        wallet: WalletSelect,
        #[command(flatten)]
        client: ClientArgs,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum AgentCommand {
    /// Register an agent; prints its Agent ID and credential (shown once).
    Add {
        /// A name for the agent.
        #[arg(long)]
        name: String,
        /// Idempotency key (default: a fresh random one).
        #[arg(long)]
        idempotency_key: Option<String>,
        #[command(flatten)]
        wallet: WalletSelect,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// List the wallet's agents.
    List {
        #[command(flatten)]
        wallet: WalletSelect,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Revoke an agent: its tokens and credential stop working at once.
    Revoke {
        /// The Agent ID.
        #[arg(value_name = "AGENT_ID")]
        agent: String,
        /// Idempotency key (default: a fresh random one).
        #[arg(long)]
        idempotency_key: Option<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Exchange an agent credential for a short-lived JWT.
    Token {
        /// The Agent ID.
        #[arg(long, env = "PURSER_AGENT_ID")]
        agent_id: String,
        /// The agent credential.
        #[arg(long, env = "PURSER_AGENT_CREDENTIAL", hide_env_values = true)]
        credential: String,
        /// The server's base URL.
        #[arg(long, env = "PURSER_SERVER", value_name = "URL")]
        server: Option<String>,
    },
}

/// Idempotency for a state-changing command.
#[derive(Debug, Clone, Args)]
pub(crate) struct KeyArgs {
    /// Idempotency key (default: a fresh random one).
    #[arg(long)]
    pub(crate) idempotency_key: Option<String>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum MandateCommand {
    /// Draft a mandate (agent); prints the signUrl to hand to your human.
    Create {
        /// What you will spend on, in plain words.
        #[arg(long)]
        description: String,
        /// The total budget, e.g. 5.
        #[arg(long)]
        limit: String,
        /// The largest single payment.
        #[arg(long)]
        max_per_tx: Option<String>,
        /// A host payments may go to (repeat for more): api.example.com or *.example.com.
        #[arg(long = "host")]
        hosts: Vec<String>,
        /// How long it lasts, in seconds (default 8 hours).
        #[arg(long)]
        valid_for_seconds: Option<u64>,
        /// When it ends (RFC 3339), instead of --valid-for-seconds.
        #[arg(long)]
        valid_until: Option<String>,
        /// An optional category.
        #[arg(long)]
        category: Option<String>,
        #[command(flatten)]
        key: KeyArgs,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Show a mandate with its spent, pending and remaining amounts.
    Status {
        /// The mandate.
        #[arg(value_name = "MANDATE_ID")]
        mandate: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// List mandates (the owner sees all; an agent its own).
    List {
        /// Only this status: pending_signature, signed, rejected, revoked, expired, exhausted.
        #[arg(long)]
        status: Option<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// List the agent's mandates that could cover a payment now.
    Eligible {
        /// The payee's host.
        #[arg(long)]
        host: Option<String>,
        /// The payment's amount.
        #[arg(long)]
        amount: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Approve and sign a mandate (owner).
    Approve {
        /// The mandate.
        #[arg(value_name = "MANDATE_ID")]
        mandate: String,
        #[command(flatten)]
        key: KeyArgs,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Reject a pending mandate (owner).
    Reject {
        /// The mandate.
        #[arg(value_name = "MANDATE_ID")]
        mandate: String,
        #[command(flatten)]
        key: KeyArgs,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Revoke a signed mandate (owner).
    Revoke {
        /// The mandate.
        #[arg(value_name = "MANDATE_ID")]
        mandate: String,
        #[command(flatten)]
        key: KeyArgs,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Print a signed mandate as JSON, for anyone to verify offline.
    Export {
        /// The mandate.
        #[arg(value_name = "MANDATE_ID")]
        mandate: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Verify a signed mandate file offline (no server needed).
    Verify {
        /// A file written by `purser mandate export` (or `-` for standard input).
        file: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum ApprovalsCommand {
    /// List approvals waiting for a decision (--all for every approval).
    List {
        /// Every approval, not only pending ones.
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Approve one payment.
    Approve {
        /// The approval.
        #[arg(value_name = "APPROVAL_ID")]
        approval: String,
        #[command(flatten)]
        key: KeyArgs,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Deny one payment.
    Deny {
        /// The approval.
        #[arg(value_name = "APPROVAL_ID")]
        approval: String,
        #[command(flatten)]
        key: KeyArgs,
        #[command(flatten)]
        client: ClientArgs,
    },
}

/// `purser payout --to … --amount … --id …`, or `purser payout status ID`.
#[derive(Debug, Clone, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub(crate) struct PayoutArgs {
    #[command(subcommand)]
    pub(crate) status: Option<PayoutStatusCommand>,
    /// The destination address.
    #[arg(long)]
    pub(crate) to: Option<String>,
    /// How much, e.g. 0.25.
    #[arg(long)]
    pub(crate) amount: Option<String>,
    /// A mandate to use.
    #[arg(long)]
    pub(crate) mandate: Option<String>,
    /// Your id for the payout; retrying with it never pays twice.
    #[arg(long = "id", value_name = "PAYOUT_ID")]
    pub(crate) payout_id: Option<String>,
    #[command(flatten)]
    pub(crate) client: ClientArgs,
}

#[derive(Debug, Clone, Subcommand)]
pub(crate) enum PayoutStatusCommand {
    /// Show a payout's status.
    Status {
        /// The payout id.
        #[arg(value_name = "PAYOUT_ID")]
        payout: String,
        #[command(flatten)]
        client: ClientArgs,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum PaymentCommand {
    /// Reserve funds for a payment to a host and/or address (agent).
    Authorize {
        /// How much.
        #[arg(long)]
        amount: String,
        /// The payee's host or URL.
        #[arg(long)]
        host: Option<String>,
        /// The payee's address.
        #[arg(long)]
        address: Option<String>,
        /// Why, in plain words.
        #[arg(long)]
        purpose: String,
        /// A mandate to use.
        #[arg(long)]
        mandate: Option<String>,
        /// An approval the owner gave for this payment.
        #[arg(long)]
        approval: Option<String>,
        /// Refuse instead of asking the owner when no mandate covers it.
        #[arg(long)]
        no_approval: bool,
        #[command(flatten)]
        key: KeyArgs,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Mark a held payment as made (pays a payee wallet on this server on the ledger).
    Commit {
        /// The reservation.
        #[arg(value_name = "RESERVATION_ID")]
        reservation: String,
        /// What settled it off the ledger (a transaction hash).
        #[arg(long)]
        settlement: Option<String>,
        #[command(flatten)]
        key: KeyArgs,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Give a held payment's funds back.
    Release {
        /// The reservation.
        #[arg(value_name = "RESERVATION_ID")]
        reservation: String,
        /// Why it did not happen.
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        key: KeyArgs,
        #[command(flatten)]
        client: ClientArgs,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum PolicyCommand {
    /// Show the wallet's policy.
    Show {
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Replace the wallet's policy (unset options mean no such rule).
    Set {
        /// The most each agent may spend per calendar month (UTC).
        #[arg(long)]
        monthly_cap: Option<String>,
        /// The largest single payment.
        #[arg(long)]
        per_payment_cap: Option<String>,
        /// A host no payment may go to (repeat for more).
        #[arg(long = "deny-host")]
        deny_hosts: Vec<String>,
        /// An address no payment may go to (repeat for more).
        #[arg(long = "deny-address")]
        deny_addresses: Vec<String>,
        /// Approve payments no mandate covers up to this amount without asking.
        #[arg(long)]
        auto_approve_up_to: Option<String>,
        #[command(flatten)]
        key: KeyArgs,
        #[command(flatten)]
        client: ClientArgs,
    },
}

/// Which database an operator command opens.
#[derive(Debug, Clone, Args)]
pub(crate) struct DbArgs {
    /// A SQLite file path, sqlite://… or postgres://… (default: the server's).
    #[arg(long, env = "PURSER_DB", value_name = "URL")]
    pub(crate) db: Option<String>,
    /// The data directory (default: $XDG_DATA_HOME/purser).
    #[arg(long, env = "PURSER_DATA_DIR", value_name = "DIR")]
    pub(crate) data_dir: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum LedgerCommand {
    /// Check every ledger invariant: per-currency sums are zero, no wallet balance is
    /// negative, balances equal their transfers, transfers reference real accounts.
    Check(DbArgs),
    /// Compare every wallet's ledger balance with its USDC on chain (after recording
    /// every deposit); takes the server's settings, `--chain` included.
    Reconcile(Box<ServeArgs>),
}

#[derive(Debug, Subcommand)]
pub(crate) enum AuditCommand {
    /// Verify the hash chain and name the first edited, deleted or reordered record.
    Verify(DbArgs),
    /// Show the wallet's audit records, newest first (owner).
    List {
        /// How many.
        #[arg(long, default_value_t = 20)]
        limit: u32,
        #[command(flatten)]
        wallet: WalletSelect,
        #[command(flatten)]
        client: ClientArgs,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// `purser serve`. Unset values fall back to the config file's `[serve]` table,
/// then to defaults.
#[derive(Debug, Clone, Args)]
pub(crate) struct ServeArgs {
    /// Address to listen on (default 127.0.0.1:8402).
    #[arg(long, env = "PURSER_LISTEN", value_name = "ADDR")]
    pub(crate) listen: Option<String>,
    #[command(flatten)]
    pub(crate) db: DbArgs,
    /// The master key file (default: beside the SQLite file, or in the data directory).
    /// PURSER_MASTER_KEY, if set, holds the key itself and wins.
    #[arg(long, env = "PURSER_MASTER_KEY_FILE", value_name = "FILE")]
    pub(crate) master_key_file: Option<PathBuf>,
    /// Enable the simulated on-ramp (default: on, since no chain is configured).
    #[arg(long, env = "PURSER_SANDBOX", value_name = "BOOL")]
    pub(crate) sandbox: Option<bool>,
    /// This server's public base URL: the agent JWT issuer, and the base of sign and approval URLs.
    #[arg(long, env = "PURSER_PUBLIC_URL", value_name = "URL")]
    pub(crate) public_url: Option<String>,
    /// Agent JWT lifetime in seconds (at most 900; default 600).
    #[arg(long, env = "PURSER_AGENT_TOKEN_TTL_SECS")]
    pub(crate) agent_token_ttl_secs: Option<u64>,
    /// How long an owner has to decide a per-payment approval, in seconds (default 600).
    #[arg(long, env = "PURSER_APPROVAL_TTL_SECS")]
    pub(crate) approval_ttl_secs: Option<u64>,
    /// Most changes per committed transaction (group commit; default 256).
    #[arg(long, env = "PURSER_MAX_BATCH")]
    pub(crate) max_batch: Option<usize>,
    /// Largest request body in bytes (default 65536).
    #[arg(long, env = "PURSER_BODY_LIMIT_BYTES")]
    pub(crate) body_limit_bytes: Option<usize>,
    /// Per-request time limit in milliseconds (default 30000).
    #[arg(long, env = "PURSER_REQUEST_TIMEOUT_MS")]
    pub(crate) request_timeout_ms: Option<u64>,
    /// How long shutdown waits for in-flight requests, in milliseconds (default 30000).
    #[arg(long, env = "PURSER_SHUTDOWN_GRACE_MS")]
    pub(crate) shutdown_grace_ms: Option<u64>,
    /// Log format (default text).
    #[arg(long, env = "PURSER_LOG_FORMAT", value_enum)]
    pub(crate) log_format: Option<LogFormat>,
    /// A `Host` the MCP endpoint (/mcp) accepts, name or host:port (repeatable;
    /// default: localhost, 127.0.0.1, ::1 and the public URL's host).
    #[arg(
        long = "mcp-allowed-host",
        env = "PURSER_MCP_ALLOWED_HOSTS",
        value_name = "HOST",
        value_delimiter = ','
    )]
    pub(crate) mcp_allowed_hosts: Vec<String>,
    #[command(flatten)]
    pub(crate) chain: ChainArgs,
}

/// The chain wallets live on. Without `--chain`, Purser runs on its internal ledger alone.
#[derive(Debug, Clone, Default, Args)]
pub(crate) struct ChainArgs {
    /// The network: base, base-sepolia, or local (the devnet's config).
    #[arg(long, env = "PURSER_CHAIN", value_name = "NAME")]
    pub(crate) chain: Option<String>,
    /// The node's JSON-RPC URL (for local, default: the devnet config's).
    #[arg(long, env = "PURSER_RPC_URL", value_name = "URL")]
    pub(crate) rpc_url: Option<String>,
    /// The devnet config `purser devnet` writes (default: .purser/devnet.json).
    #[arg(long, env = "PURSER_CHAIN_CONFIG", value_name = "FILE")]
    pub(crate) chain_config: Option<PathBuf>,
    /// A file holding the relayer's private key, which pays gas for settlements and
    /// on-chain payouts. PURSER_RELAYER_KEY, if set, holds the key itself and wins.
    /// On local, the devnet's funded key is the default.
    #[arg(long, env = "PURSER_RELAYER_KEY_FILE", value_name = "FILE")]
    pub(crate) relayer_key_file: Option<PathBuf>,
    /// Each RPC call's time limit in milliseconds (default 5000).
    #[arg(long, env = "PURSER_RPC_TIMEOUT_MS")]
    pub(crate) rpc_timeout_ms: Option<u64>,
    /// How long a settlement waits for its receipt before answering
    /// settlement_pending, in milliseconds (default 30000).
    #[arg(long, env = "PURSER_RECEIPT_TIMEOUT_MS")]
    pub(crate) receipt_timeout_ms: Option<u64>,
    /// How often new deposits and open x402 payments are checked, in milliseconds
    /// (default 2000).
    #[arg(long, env = "PURSER_CHAIN_POLL_MS")]
    pub(crate) chain_poll_ms: Option<u64>,
}

#[derive(Debug, Clone, Args)]
pub(crate) struct DemoArgs {
    /// Keep the demo's database directory and print where it is.
    #[arg(long)]
    pub(crate) keep: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum BenchCommand {
    /// Durable ledger transfers per second through the store (group commit on and off).
    Ledger(BenchLedgerArgs),
    /// Payment authorizations per second through the full path: HTTP, JWT, mandate
    /// check, reservation, audit and durable commit.
    Authorize(BenchAuthorizeArgs),
    /// x402 on a fresh anvil: facilitator `/verify` throughput and latency, Purser's
    /// beside the reference TypeScript facilitator's; and `purser fetch` end to end.
    X402(BenchX402Args),
    /// The Monetize gateway's overhead: an in-process API called directly and
    /// through the gateway (free route, 402, paid on the internal ledger rail),
    /// beside x402-rs's axum middleware (x402-axum) on the same handler.
    Gateway(BenchGatewayArgs),
    /// Paying a payment link on the internal ledger rail: the payee's side (verify,
    /// take a use, settle, record), each payment signed beforehand.
    Link(BenchLinkArgs),
    /// MCP tool calls over streamable HTTP (`/mcp`) beside the same work without MCP:
    /// a mandate read (MCP vs the REST call) and a paid fetch of a payment link
    /// (`fetch_paid_url` vs `purser fetch`'s path); and `ping`, the transport alone.
    Mcp(BenchMcpArgs),
    /// The owner's dashboard pages with a seeded history (payments over 30 days,
    /// payouts, approvals, links): each page requested with a signed-in session.
    Dashboard(BenchDashboardArgs),
}

#[derive(Debug, Clone, Args)]
pub(crate) struct BenchDashboardArgs {
    /// Databases to measure: `sqlite` (a temporary file) and/or a postgres:// URL.
    #[arg(long, value_delimiter = ',', default_value = "sqlite")]
    pub(crate) db: Vec<String>,
    /// Payments to seed, spread over the last 30 days.
    #[arg(long, default_value_t = 100_000)]
    pub(crate) payments: usize,
    /// Timed requests per page.
    #[arg(long, default_value_t = 100)]
    pub(crate) requests: usize,
}

#[derive(Debug, Clone, Args)]
pub(crate) struct BenchMcpArgs {
    /// Databases to measure: `sqlite` (a temporary file) and/or a postgres:// URL.
    #[arg(long, value_delimiter = ',', default_value = "sqlite")]
    pub(crate) db: Vec<String>,
    /// Concurrent clients, e.g. 1,16.
    #[arg(long, value_delimiter = ',', default_value = "1,16")]
    pub(crate) clients: Vec<usize>,
    /// Reads timed per client count, each way (direct, MCP).
    #[arg(long, default_value_t = 2000)]
    pub(crate) calls: usize,
    /// Paid fetches timed per client count, each way (MCP, `purser fetch`'s path).
    #[arg(long, default_value_t = 200)]
    pub(crate) pay_calls: usize,
}

#[derive(Debug, Clone, Args)]
pub(crate) struct BenchLinkArgs {
    /// Databases to measure: `sqlite` (a temporary file) and/or a postgres:// URL.
    #[arg(long, value_delimiter = ',', default_value = "sqlite")]
    pub(crate) db: Vec<String>,
    /// Concurrent payers, e.g. 1,16.
    #[arg(long, value_delimiter = ',', default_value = "1,16")]
    pub(crate) clients: Vec<usize>,
    /// Payments timed per combination.
    #[arg(long, default_value_t = 400)]
    pub(crate) payments: usize,
}

#[derive(Debug, Clone, Args)]
pub(crate) struct BenchX402Args {
    /// Concurrent clients for `/verify`, e.g. 1,16.
    #[arg(long, value_delimiter = ',', default_value = "1,16")]
    pub(crate) clients: Vec<usize>,
    /// Seconds to measure each facilitator at each client count.
    #[arg(long, default_value_t = 5)]
    pub(crate) seconds: u64,
    /// Paid `purser fetch` runs to time.
    #[arg(long, default_value_t = 20)]
    pub(crate) fetches: usize,
    /// The repository root (its `contracts/` and `e2e/` are installed when needed).
    #[arg(long, default_value = ".")]
    pub(crate) repo: PathBuf,
}

#[derive(Debug, Clone, Args)]
pub(crate) struct BenchGatewayArgs {
    /// Concurrent clients, e.g. 1,16.
    #[arg(long, value_delimiter = ',', default_value = "1,16")]
    pub(crate) concurrency: Vec<usize>,
    /// Calls timed per concurrency for the direct, free and unpaid (402) runs.
    #[arg(long, default_value_t = 2000)]
    pub(crate) requests: usize,
    /// Paid calls timed per concurrency (each signed beforehand and sent once).
    #[arg(long, default_value_t = 500)]
    pub(crate) paid_requests: usize,
}

#[derive(Debug, Clone, Args)]
pub(crate) struct BenchAuthorizeArgs {
    /// Databases to measure: `sqlite` (a temporary file) and/or a postgres:// URL.
    #[arg(long, value_delimiter = ',', default_value = "sqlite")]
    pub(crate) db: Vec<String>,
    /// Concurrent clients, e.g. 1,16,64.
    #[arg(long, value_delimiter = ',', default_value = "1,16,64")]
    pub(crate) clients: Vec<usize>,
    /// Seconds to measure each combination.
    #[arg(long, default_value_t = 5)]
    pub(crate) seconds: u64,
}

#[derive(Debug, Clone, Args)]
pub(crate) struct BenchLedgerArgs {
    /// Databases to measure: `sqlite` (a temporary file) and/or a postgres:// URL.
    #[arg(long, value_delimiter = ',', default_value = "sqlite")]
    pub(crate) db: Vec<String>,
    /// Concurrent clients, e.g. 1,64.
    #[arg(long, value_delimiter = ',', default_value = "1,64")]
    pub(crate) clients: Vec<usize>,
    /// Max changes per transaction, e.g. 1,256 (1 = one commit per transfer).
    #[arg(long, value_delimiter = ',', default_value = "1,256")]
    pub(crate) batch: Vec<usize>,
    /// Seconds to measure each combination.
    #[arg(long, default_value_t = 5)]
    pub(crate) seconds: u64,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Cli;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }
}

/// A link's terms, on create and update.
#[derive(Debug, Clone, Args)]
pub(crate) struct LinkTerms {
    /// What is paid for, shown to payers.
    #[arg(long)]
    pub(crate) description: Option<String>,
    /// Text delivered to the payer once paid.
    #[arg(long, conflicts_with = "content_file")]
    pub(crate) content: Option<String>,
    /// A file whose text is delivered to the payer once paid.
    #[arg(long, value_name = "FILE")]
    pub(crate) content_file: Option<PathBuf>,
    /// A URL delivered to the payer once paid.
    #[arg(long, value_name = "URL")]
    pub(crate) resource_url: Option<String>,
    /// When it stops taking payments (RFC 3339).
    #[arg(long, value_name = "TIME", conflicts_with = "expires_in")]
    pub(crate) expires_at: Option<String>,
    /// When it stops taking payments, in seconds from now.
    #[arg(long, value_name = "SECONDS")]
    pub(crate) expires_in: Option<u64>,
    /// How many payments it takes in all (1: charge one agent once).
    #[arg(long)]
    pub(crate) max_uses: Option<u32>,
    /// Where each payment and refund is announced (HMAC-SHA256 signed).
    #[arg(long, value_name = "URL")]
    pub(crate) webhook_url: Option<String>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum LinkCommand {
    /// Create a payment link; prints its payUrl (and webhook secret, once).
    Create {
        /// The price of one use, e.g. 0.25.
        #[arg(long)]
        amount: String,
        #[command(flatten)]
        terms: LinkTerms,
        #[command(flatten)]
        key: KeyArgs,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// List your payment links.
    List {
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Show a payment link.
    Get {
        /// The link.
        #[arg(value_name = "LINK_ID")]
        link: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Change a payment link's terms, or turn it on or off.
    Update {
        /// The link.
        #[arg(value_name = "LINK_ID")]
        link: String,
        #[command(flatten)]
        terms: LinkTerms,
        /// Take payments again.
        #[arg(long, conflicts_with = "disable")]
        enable: bool,
        /// Stop taking payments.
        #[arg(long)]
        disable: bool,
        /// Replace the webhook signing secret (the new one is printed once).
        #[arg(long)]
        rotate_webhook_secret: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Disable a payment link: it takes no more payments.
    Disable {
        /// The link.
        #[arg(value_name = "LINK_ID")]
        link: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// The payments a link received.
    Payments {
        /// The link.
        #[arg(value_name = "LINK_ID")]
        link: String,
        #[command(flatten)]
        client: ClientArgs,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum ReceivedCommand {
    /// List received payments (agents: --link is required).
    List {
        /// Only this link's.
        #[arg(long, value_name = "LINK_ID")]
        link: Option<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Show one received payment.
    Get {
        /// The payment.
        #[arg(value_name = "PAYMENT_ID")]
        payment: String,
        #[command(flatten)]
        client: ClientArgs,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum RefundCommand {
    /// Start a refund (the merchant's agent); prints the refundUrl for your human.
    Create {
        /// The received payment to refund.
        #[arg(long, value_name = "PAYMENT_ID")]
        payment: String,
        /// How much (default: all that is left to refund).
        #[arg(long)]
        amount: Option<String>,
        /// Why.
        #[arg(long)]
        reason: Option<String>,
        #[command(flatten)]
        key: KeyArgs,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// List refunds.
    List {
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Show a refund, brought up to date.
    Status {
        /// The refund.
        #[arg(value_name = "REFUND_ID")]
        refund: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Withdraw a pending refund.
    Cancel {
        /// The refund.
        #[arg(value_name = "REFUND_ID")]
        refund: String,
        #[command(flatten)]
        client: ClientArgs,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum WebhooksCommand {
    /// List the wallet's webhook events and their delivery (owner).
    List {
        #[command(flatten)]
        client: ClientArgs,
    },
}
