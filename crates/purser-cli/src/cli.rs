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
    /// Operator checks of the ledger (reads the database directly).
    #[command(subcommand)]
    Ledger(LedgerCommand),
    /// The tamper-evident audit trail.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Measure hot paths on this machine.
    #[command(subcommand)]
    Bench(BenchCommand),
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
