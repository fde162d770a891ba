//! The config file and how settings are resolved: flag, then environment (clap
//! folds both into the arguments), then the file, then the default.
//!
//! ```toml
//! server = "http://127.0.0.1:8402"   # written by `purser wallet create`
//! token = "purser_owner_…"           # the owner token; the file is kept at mode 0600
//! wallet_id = "wal_…"
//!
//! [serve]
//! listen = "127.0.0.1:8402"
//! db = "/var/lib/purser/purser.db"    # or postgres://…
//! sandbox = true
//! log_format = "json"
//! ```

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use std::time::Duration;

use purser_chain::client::Timeouts;
use purser_chain::network::{ChainConfig, Network};
use purser_types::Secret;

use crate::cli::{ChainArgs, DbArgs, LogFormat, ServeArgs};

/// The default API address.
pub(crate) const DEFAULT_LISTEN: &str = "127.0.0.1:8402";

/// The whole file.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ConfigFile {
    /// The server's base URL.
    pub(crate) server: Option<String>,
    /// An owner token or agent token.
    pub(crate) token: Option<String>,
    /// The wallet commands act on.
    pub(crate) wallet_id: Option<String>,
    /// The Agent ID, when `token` is an agent credential (`purser mcp`, agent commands).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) agent_id: Option<String>,
    /// `purser serve` settings.
    #[serde(default, skip_serializing_if = "ServeFile::is_empty")]
    pub(crate) serve: ServeFile,
}

/// The `[serve]` table; every key mirrors a `purser serve` flag.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ServeFile {
    pub(crate) listen: Option<String>,
    pub(crate) db: Option<String>,
    pub(crate) data_dir: Option<PathBuf>,
    pub(crate) master_key_file: Option<PathBuf>,
    pub(crate) sandbox: Option<bool>,
    pub(crate) public_url: Option<String>,
    pub(crate) agent_token_ttl_secs: Option<u64>,
    pub(crate) approval_ttl_secs: Option<u64>,
    pub(crate) max_batch: Option<usize>,
    pub(crate) body_limit_bytes: Option<usize>,
    pub(crate) request_timeout_ms: Option<u64>,
    pub(crate) shutdown_grace_ms: Option<u64>,
    pub(crate) log_format: Option<String>,
    pub(crate) chain: Option<String>,
    pub(crate) rpc_url: Option<String>,
    pub(crate) chain_config: Option<PathBuf>,
    pub(crate) relayer_key_file: Option<PathBuf>,
    pub(crate) rpc_timeout_ms: Option<u64>,
    pub(crate) receipt_timeout_ms: Option<u64>,
    pub(crate) chain_poll_ms: Option<u64>,
    pub(crate) mcp_allowed_hosts: Option<Vec<String>>,
}

impl ServeFile {
    fn is_empty(&self) -> bool {
        *self == ServeFile::default()
    }
}

fn home() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
}

fn xdg_dir(variable: &str, fallback: &str) -> PathBuf {
    std::env::var_os(variable)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| home().map(|h| h.join(fallback)))
        .unwrap_or_else(|| PathBuf::from("."))
        .join("purser")
}

/// Where the config file lives unless `--config`/`PURSER_CONFIG` says otherwise.
pub(crate) fn default_config_path() -> PathBuf {
    xdg_dir("XDG_CONFIG_HOME", ".config").join("config.toml")
}

/// Where `purser serve` keeps its data unless told otherwise.
pub(crate) fn default_data_dir() -> PathBuf {
    xdg_dir("XDG_DATA_HOME", ".local/share")
}

/// Reads the config file; a missing file is an empty config.
pub(crate) fn load(path: &Path) -> Result<ConfigFile> {
    match std::fs::read_to_string(path) {
        Ok(text) => toml::from_str(&text)
            .with_context(|| format!("config file {} is invalid", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(ConfigFile::default()),
        Err(e) => Err(e).with_context(|| format!("cannot read config file {}", path.display())),
    }
}

/// Writes the config file atomically with mode 0600: it holds a token.
pub(crate) fn save(path: &Path, config: &ConfigFile) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let text = toml::to_string_pretty(config).context("cannot encode the config")?;
    let temporary = path.with_extension("toml.tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(&temporary)
        .with_context(|| format!("cannot write {}", temporary.display()))?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    std::fs::rename(&temporary, path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// Where the master key comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum MasterKeySource {
    /// `PURSER_MASTER_KEY` holds the key itself.
    Env,
    /// A key file, created on first start.
    File(PathBuf),
}

/// The database URL and the default master-key file beside it.
pub(crate) fn resolve_db(args: &DbArgs, file: &ServeFile) -> (String, PathBuf) {
    let data_dir = args
        .data_dir
        .clone()
        .or_else(|| file.data_dir.clone())
        .unwrap_or_else(default_data_dir);
    let db = args.db.clone().or_else(|| file.db.clone());
    match db {
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            (url, data_dir.join("master.key"))
        }
        Some(url) => {
            let path = sqlite_path(&url);
            let key = PathBuf::from(format!("{}.key", path.display()));
            (url, key)
        }
        None => {
            let path = data_dir.join("purser.db");
            let key = data_dir.join("purser.db.key");
            (path.display().to_string(), key)
        }
    }
}

/// The file behind a SQLite URL or path.
fn sqlite_path(url: &str) -> PathBuf {
    let path = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    PathBuf::from(path.split('?').next().unwrap_or(path))
}

/// Everything `purser serve` needs, resolved.
#[derive(Debug, Clone)]
pub(crate) struct ServeSettings {
    pub(crate) listen: SocketAddr,
    pub(crate) db_url: String,
    pub(crate) master_key: MasterKeySource,
    pub(crate) sandbox: bool,
    pub(crate) public_url: String,
    pub(crate) agent_token_ttl_secs: u64,
    pub(crate) approval_ttl_secs: u64,
    pub(crate) max_batch: usize,
    pub(crate) body_limit_bytes: usize,
    pub(crate) request_timeout_ms: u64,
    pub(crate) shutdown_grace_ms: u64,
    pub(crate) log_format: LogFormat,
    pub(crate) chain: Option<ChainSettings>,
    /// `Host` values `/mcp` accepts.
    pub(crate) mcp_allowed_hosts: Vec<String>,
}

/// The chain `purser serve` runs on.
#[derive(Debug, Clone)]
pub(crate) struct ChainSettings {
    pub(crate) network: Network,
    pub(crate) rpc_url: String,
    pub(crate) relayer_key: Option<Secret<String>>,
    pub(crate) timeouts: Timeouts,
    /// The first block to scan for deposits (`u64::MAX`: the latest at first start).
    pub(crate) start_block: u64,
    /// How often deposits and open payments are checked.
    pub(crate) poll: Duration,
}

/// Where `purser devnet` writes its config unless told otherwise.
pub(crate) const DEFAULT_DEVNET_CONFIG: &str = ".purser/devnet.json";

fn read_key_file(path: &Path) -> Result<Secret<String>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the relayer key file {}", path.display()))?;
    Ok(Secret::new(text.trim().to_owned()))
}

/// Resolves the chain settings; `None` without `--chain`.
pub(crate) fn resolve_chain(args: &ChainArgs, file: &ServeFile) -> Result<Option<ChainSettings>> {
    let Some(name) = args.chain.clone().or_else(|| file.chain.clone()) else {
        return Ok(None);
    };
    let config = if name == "local" {
        let path = args
            .chain_config
            .clone()
            .or_else(|| file.chain_config.clone())
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DEVNET_CONFIG));
        Some(ChainConfig::load(&path)?)
    } else {
        None
    };
    let network = Network::named(&name, config.as_ref())?;
    let rpc_url = args
        .rpc_url
        .clone()
        .or_else(|| file.rpc_url.clone())
        .or_else(|| config.as_ref().map(|c| c.rpc_url.clone()))
        .with_context(|| format!("--rpc-url is required for --chain {name}"))?;
    let relayer_key = match std::env::var("PURSER_RELAYER_KEY") {
        Ok(key) if !key.is_empty() => Some(Secret::new(key)),
        _ => match args
            .relayer_key_file
            .clone()
            .or_else(|| file.relayer_key_file.clone())
        {
            Some(path) => Some(read_key_file(&path)?),
            None => config
                .as_ref()
                .and_then(|c| c.relayer_key.clone())
                .map(Secret::new),
        },
    };
    let timeouts = Timeouts {
        rpc: Duration::from_millis(args.rpc_timeout_ms.or(file.rpc_timeout_ms).unwrap_or(5_000)),
        receipt: Duration::from_millis(
            args.receipt_timeout_ms
                .or(file.receipt_timeout_ms)
                .unwrap_or(30_000),
        ),
    };
    if timeouts.rpc.is_zero() || timeouts.receipt.is_zero() {
        bail!("rpc_timeout_ms and receipt_timeout_ms must be more than 0");
    }
    Ok(Some(ChainSettings {
        network,
        rpc_url,
        relayer_key,
        timeouts,
        start_block: config.as_ref().map_or(u64::MAX, |c| c.deploy_block),
        poll: Duration::from_millis(
            args.chain_poll_ms
                .or(file.chain_poll_ms)
                .unwrap_or(2_000)
                .max(100),
        ),
    }))
}

/// Resolves `purser serve`'s settings and rejects out-of-range values up front.
pub(crate) fn resolve_serve(args: &ServeArgs, file: &ServeFile) -> Result<ServeSettings> {
    let listen_text = args
        .listen
        .clone()
        .or_else(|| file.listen.clone())
        .unwrap_or_else(|| DEFAULT_LISTEN.into());
    let listen: SocketAddr = listen_text
        .parse()
        .with_context(|| format!("listen address {listen_text:?} is not host:port"))?;
    let (db_url, key_file) = resolve_db(&args.db, file);
    let master_key = if std::env::var_os("PURSER_MASTER_KEY").is_some_and(|v| !v.is_empty()) {
        MasterKeySource::Env
    } else {
        MasterKeySource::File(
            args.master_key_file
                .clone()
                .or_else(|| file.master_key_file.clone())
                .unwrap_or(key_file),
        )
    };
    let log_format = match args.log_format {
        Some(format) => format,
        None => match file.log_format.as_deref() {
            None | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(other) => bail!("log_format {other:?} must be \"text\" or \"json\""),
        },
    };
    let chain = resolve_chain(&args.chain, file)?;
    let public_url = args
        .public_url
        .clone()
        .or_else(|| file.public_url.clone())
        .unwrap_or_else(|| format!("http://{listen}"));
    let mcp_allowed_hosts = if args.mcp_allowed_hosts.is_empty() {
        file.mcp_allowed_hosts
            .clone()
            .unwrap_or_else(|| default_mcp_hosts(&public_url))
    } else {
        args.mcp_allowed_hosts.clone()
    };
    let settings = ServeSettings {
        listen,
        db_url,
        master_key,
        // With a chain, money comes from real deposits; the simulated on-ramp is opt-in.
        sandbox: args.sandbox.or(file.sandbox).unwrap_or(chain.is_none()),
        public_url,
        agent_token_ttl_secs: args
            .agent_token_ttl_secs
            .or(file.agent_token_ttl_secs)
            .unwrap_or(600),
        approval_ttl_secs: args
            .approval_ttl_secs
            .or(file.approval_ttl_secs)
            .unwrap_or(600),
        max_batch: args.max_batch.or(file.max_batch).unwrap_or(256),
        body_limit_bytes: args
            .body_limit_bytes
            .or(file.body_limit_bytes)
            .unwrap_or(64 * 1024),
        request_timeout_ms: args
            .request_timeout_ms
            .or(file.request_timeout_ms)
            .unwrap_or(30_000),
        shutdown_grace_ms: args
            .shutdown_grace_ms
            .or(file.shutdown_grace_ms)
            .unwrap_or(30_000),
        log_format,
        chain,
        mcp_allowed_hosts,
    };
    validate(&settings)?;
    Ok(settings)
}

/// Loopback names plus the public URL's host and authority: what MCP clients on
/// this machine, or through the public URL, send as `Host`.
pub(crate) fn default_mcp_hosts(public_url: &str) -> Vec<String> {
    let mut hosts: Vec<String> = ["localhost", "127.0.0.1", "::1"].map(String::from).to_vec();
    if let Ok(url) = url::Url::parse(public_url)
        && let Some(host) = url.host_str()
    {
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        if let Some(port) = url.port() {
            hosts.push(format!("{host}:{port}"));
        }
        if !hosts.contains(&host) {
            hosts.push(host);
        }
    }
    hosts
}

fn validate(settings: &ServeSettings) -> Result<()> {
    if !(1..=900).contains(&settings.agent_token_ttl_secs) {
        bail!("agent_token_ttl_secs must be 1-900 (agent tokens live at most 15 minutes)");
    }
    if !(10..=7 * 24 * 3600).contains(&settings.approval_ttl_secs) {
        bail!("approval_ttl_secs must be 10 seconds to 7 days");
    }
    if !(1..=4096).contains(&settings.max_batch) {
        bail!("max_batch must be 1-4096");
    }
    if !(1024..=16 * 1024 * 1024).contains(&settings.body_limit_bytes) {
        bail!("body_limit_bytes must be 1 KiB-16 MiB");
    }
    if settings.request_timeout_ms < 100 {
        bail!("request_timeout_ms must be at least 100");
    }
    if !(settings.public_url.starts_with("http://") || settings.public_url.starts_with("https://"))
    {
        bail!("public_url must start with http:// or https://");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serve_args() -> ServeArgs {
        ServeArgs {
            listen: None,
            db: DbArgs {
                db: None,
                data_dir: Some(PathBuf::from("/data")),
            },
            master_key_file: None,
            sandbox: None,
            public_url: None,
            agent_token_ttl_secs: None,
            approval_ttl_secs: None,
            max_batch: None,
            body_limit_bytes: None,
            request_timeout_ms: None,
            shutdown_grace_ms: None,
            log_format: None,
            mcp_allowed_hosts: Vec::new(),
            chain: ChainArgs::default(),
        }
    }

    #[test]
    fn flags_beat_the_file_which_beats_defaults() {
        let file = ServeFile {
            listen: Some("127.0.0.1:9000".into()),
            max_batch: Some(8),
            ..ServeFile::default()
        };
        let mut args = serve_args();
        let settings = resolve_serve(&args, &file).unwrap();
        assert_eq!(settings.listen.port(), 9000);
        assert_eq!(settings.max_batch, 8);
        assert_eq!(settings.db_url, "/data/purser.db");
        assert_eq!(settings.public_url, "http://127.0.0.1:9000");
        args.listen = Some("127.0.0.1:9100".into());
        args.max_batch = Some(1);
        let settings = resolve_serve(&args, &file).unwrap();
        assert_eq!((settings.listen.port(), settings.max_batch), (9100, 1));
    }

    #[test]
    fn out_of_range_values_are_refused_with_the_setting_named() {
        let mut args = serve_args();
        args.agent_token_ttl_secs = Some(901);
        let error = resolve_serve(&args, &ServeFile::default())
            .unwrap_err()
            .to_string();
        assert!(error.contains("agent_token_ttl_secs"), "{error}");
        let mut args = serve_args();
        args.listen = Some("localhost".into());
        assert!(resolve_serve(&args, &ServeFile::default()).is_err());
        let file = ServeFile {
            log_format: Some("xml".into()),
            ..ServeFile::default()
        };
        assert!(resolve_serve(&serve_args(), &file).is_err());
    }

    #[test]
    fn the_key_file_sits_beside_the_database() {
        let file = ServeFile::default();
        let args = DbArgs {
            db: Some("sqlite:///srv/p.db?mode=rwc".into()),
            data_dir: None,
        };
        assert_eq!(resolve_db(&args, &file).1, PathBuf::from("/srv/p.db.key"));
        let args = DbArgs {
            db: Some("postgres://h/db".into()),
            data_dir: Some("/d".into()),
        };
        assert_eq!(resolve_db(&args, &file).1, PathBuf::from("/d/master.key"));
    }

    #[test]
    fn unknown_keys_in_the_file_are_errors() {
        assert!(toml::from_str::<ConfigFile>("servr = \"x\"").is_err());
        assert!(toml::from_str::<ConfigFile>("[serve]\nlisten = \"x\"").is_ok());
    }
}
