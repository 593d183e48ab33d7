//! Starting the service, and the administrative commands that work on its storage.
//!
//! Start-up checks everything before listening: the configuration, the policy against the
//! schema and the configured keys, every key (opened once, so a wrong PIN is a start-up
//! error), the TLS certificate and key, and the database. With `[tls]` the service serves HTTPS
//! on any address; without it, plain HTTP only on loopback addresses (behind a TLS-terminating
//! proxy), so credentials never cross a network in clear.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use axum::serve::ListenerExt as _;

use crate::config::{ConfigError, LogConfig, ServiceConfig};
use crate::connections;
use crate::http::{AppState, router};
use crate::key_state::KeyState;
use crate::keyring::{self, KeyringError};
use crate::limits::Limits;
use crate::log::{LogSigner, sign_checkpoint};
use crate::metrics::Metrics;
use crate::oidc::IssuerSet;
use crate::policy::{PolicyEngine, PolicyError};
use crate::storage::postgres::PostgresStorage;
use crate::storage::sqlite::SqliteStorage;
use crate::storage::{Backend, Open, Storage, StorageError};
use crate::tls::{self, TlsListener};
use crate::tokens::{self, Role, TokenRecord};
use fwsign_keys::timestamp::client::TsaClient;

/// Why the service did not start, or an admin command failed.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The configuration.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The policy file.
    #[error(transparent)]
    Policy(#[from] PolicyError),
    /// A key.
    #[error(transparent)]
    Keyring(#[from] KeyringError),
    /// The database.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// Plain HTTP on a non-loopback address.
    #[error(
        "listen = \"{0}\": plain HTTP is served only on loopback addresses; configure [tls] cert and key, or listen on 127.0.0.1 or [::1] behind a TLS-terminating proxy"
    )]
    NotLoopback(SocketAddr),
    /// Binding or serving failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        source: std::io::Error,
    },
    /// The transparency log's key, or its stored state.
    #[error("[log]: {0}")]
    Log(#[from] fwsign_tlog::TlogError),
    /// An admin command names a key the configuration does not have.
    #[error("no key named \"{name}\" in the configuration (keys: {keys})")]
    UnknownKey {
        /// The name given.
        name: String,
        /// The configured keys, comma-separated.
        keys: String,
    },
    /// The random number generator failed.
    #[error("random number generator: {0}")]
    Random(String),
}

/// How long one time-stamping attempt may take.
const TSA_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// Retries of an unreachable or failing time-stamping authority.
const TSA_RETRIES: u32 = 2;

fn runtime() -> Result<tokio::runtime::Runtime, ServerError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|source| ServerError::Io { what: "starting the runtime".into(), source })
}

/// Builds the state: policy, keys, storage (migrated).
async fn state<S: Open>(config: ServiceConfig) -> Result<AppState<S>, ServerError> {
    if config.tls.is_none() && !config.listen.ip().is_loopback() {
        return Err(ServerError::NotLoopback(config.listen));
    }
    let names: Vec<&str> = config.keys.keys().map(String::as_str).collect();
    let policy = PolicyEngine::load(&config.policy, &names)?;
    let keys = keyring::open(&config.keys)?;
    let storage = S::open(&config.database).await?;
    let log = match &config.log {
        Some(log) => Some(open_log(log, &storage).await?),
        None => None,
    };
    let key_locks = config.keys.keys().map(|name| (name.clone(), Default::default())).collect();
    let issuers = Arc::new(IssuerSet::new(&config.issuers));
    let tsa =
        config.timestamp_url.as_deref().map(|url| TsaClient::new(url, TSA_TIMEOUT, TSA_RETRIES));
    let limits = Limits::new(&config.limits);
    Ok(AppState {
        config,
        storage,
        policy,
        keys,
        key_locks,
        in_flight: Default::default(),
        metrics: Metrics::default(),
        issuers,
        tsa,
        log,
        limits,
    })
}

/// Opens the log key and checks it against the stored log: a new log gets its empty
/// checkpoint; an existing one must be this origin's, signed by this key.
async fn open_log(config: &LogConfig, storage: &impl Storage) -> Result<LogSigner, ServerError> {
    let signer = LogSigner::open(config)?;
    match storage.log_checkpoint().await? {
        None => {
            let empty = fwsign_tlog::tree::empty_tree_hash();
            let checkpoint = sign_checkpoint(&signer, 0, empty)?;
            storage.insert_log_checkpoint(0, &checkpoint).await?;
        }
        Some(checkpoint) => {
            signer.check_checkpoint(&checkpoint).map_err(|e| {
                fwsign_tlog::TlogError::Key(format!(
                    "the database's log is not the log {} signed by this key: {e}",
                    signer.origin()
                ))
            })?;
        }
    }
    Ok(signer)
}

/// Checks everything, binds, and serves until `shutdown` completes; `bound` learns the address.
async fn serve_until(
    config: ServiceConfig,
    bound: impl FnOnce(SocketAddr),
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    match Backend::of(&config.database)? {
        Backend::Sqlite => serve_with::<SqliteStorage>(config, bound, shutdown).await,
        Backend::Postgres => serve_with::<PostgresStorage>(config, bound, shutdown).await,
    }
}

/// [`serve_until`] with the storage backend `S`.
async fn serve_with<S: Open>(
    config: ServiceConfig,
    bound: impl FnOnce(SocketAddr),
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let listen = config.listen;
    let tls = match &config.tls {
        Some(files) => Some(tls::server_config(&config, files)?),
        None => None,
    };
    let state = Arc::new(state::<S>(config).await?);
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|source| ServerError::Io { what: format!("listening on {listen}"), source })?;
    let address = listener
        .local_addr()
        .map_err(|source| ServerError::Io { what: format!("listening on {listen}"), source })?;
    bound(address);
    let header_read_timeout = state.config.header_read_timeout;
    let app = router(state);
    match tls {
        // The tap turns off Nagle's algorithm, as axum does not on a TLS stream.
        Some(tls) => {
            let listener = TlsListener::new(listener, tls)
                .map_err(|source| ServerError::Io {
                    what: format!("listening on {listen}"),
                    source,
                })?
                .tap_io(|stream| {
                    let _ = stream.get_ref().0.set_nodelay(true);
                });
            connections::serve(listener, app, header_read_timeout, shutdown).await;
        }
        None => {
            let listener = listener.tap_io(|stream| {
                let _ = stream.set_nodelay(true);
            });
            connections::serve(listener, app, header_read_timeout, shutdown).await;
        }
    }
    Ok(())
}

/// Runs the service until Ctrl-C or SIGTERM (`fwsign serve`).
///
/// # Errors
/// [`ServerError`] if it cannot start or stops with an error.
pub fn run(config: ServiceConfig) -> Result<(), ServerError> {
    let scheme = scheme(&config);
    runtime()?.block_on(serve_until(
        config,
        |address| eprintln!("fwsign service listening on {scheme}://{address}"),
        shutdown_signal(),
    ))
}

/// `https` with `[tls]`, else `http`.
fn scheme(config: &ServiceConfig) -> &'static str {
    if config.tls.is_some() { "https" } else { "http" }
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    let mut terminate =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    let terminated = async {
        match terminate.as_mut() {
            Some(signal) => {
                signal.recv().await;
            }
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = interrupt => {}
        () = terminated => {}
    }
}

/// A service running on its own thread (tests, embedding); stopped when dropped.
#[derive(Debug)]
pub struct RunningService {
    /// The bound address.
    pub address: SocketAddr,
    scheme: &'static str,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<Result<(), ServerError>>>,
}

impl RunningService {
    /// Starts the service and returns once it listens (`listen` port 0 picks a free port).
    ///
    /// # Errors
    /// [`ServerError`] if it cannot start.
    pub fn start(config: ServiceConfig) -> Result<Self, ServerError> {
        let scheme = scheme(&config);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (tell, listening) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let shutdown = async {
                let _ = stopped.await;
            };
            runtime()?.block_on(serve_until(
                config,
                |a| {
                    let _ = tell.send(a);
                },
                shutdown,
            ))
        });
        match listening.recv() {
            Ok(address) => Ok(Self { address, scheme, stop: Some(stop), thread: Some(thread) }),
            Err(_) => Err(match thread.join() {
                Ok(Err(error)) => error,
                _ => ServerError::Io {
                    what: "starting the service".into(),
                    source: std::io::Error::other("the service thread ended"),
                },
            }),
        }
    }

    /// The base URL, `http://ADDRESS` or, with TLS, `https://ADDRESS`.
    pub fn url(&self) -> String {
        format!("{}://{}", self.scheme, self.address)
    }
}

impl Drop for RunningService {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Creates an API token (`fwsign token create`) and returns it: the only time it is shown.
///
/// # Errors
/// [`ServerError`] for the configuration, the database or a duplicate name.
pub fn create_token(
    config_path: &Path,
    name: &str,
    role: Role,
    group: Option<&str>,
) -> Result<String, ServerError> {
    let config = ServiceConfig::load(config_path)?;
    let token = tokens::generate().map_err(|e| ServerError::Random(e.to_string()))?;
    let record = TokenRecord { name: name.to_owned(), role, group: group.map(ToOwned::to_owned) };
    let command = AdminCommand::CreateToken(&record, tokens::hash(&token));
    runtime()?.block_on(command.run_on(&config.database))?;
    Ok(token)
}

/// Revokes the API token named `name` (`fwsign token revoke`); whether one was live.
///
/// # Errors
/// [`ServerError`] for the configuration or the database.
pub fn revoke_token(config_path: &Path, name: &str) -> Result<bool, ServerError> {
    let config = ServiceConfig::load(config_path)?;
    Ok(runtime()?.block_on(AdminCommand::RevokeToken(name).run_on(&config.database))?)
}

/// What `fwsign token` and `fwsign key` do to the database.
enum AdminCommand<'a> {
    /// Store a token's record and hash.
    CreateToken(&'a TokenRecord, String),
    /// Revoke the token named so.
    RevokeToken(&'a str),
    /// Move the key named so to a later state.
    SetKeyState(&'a str, KeyState),
}

impl AdminCommand<'_> {
    /// Opens the database at `url` and runs the command; `false` only for a token revocation
    /// that found no live token.
    async fn run_on(self, url: &str) -> Result<bool, StorageError> {
        match Backend::of(url)? {
            Backend::Sqlite => self.run(&SqliteStorage::open(url).await?).await,
            Backend::Postgres => self.run(&PostgresStorage::open(url).await?).await,
        }
    }

    async fn run(self, storage: &impl Storage) -> Result<bool, StorageError> {
        match self {
            Self::CreateToken(record, hash) => {
                storage.insert_token(record, &hash).await.map(|()| true)
            }
            Self::RevokeToken(name) => storage.revoke_token(name).await,
            Self::SetKeyState(name, state) => {
                storage.set_key_state(name, state).await.map(|()| true)
            }
        }
    }
}

/// Moves the configured key `name` to `state` (`fwsign key retire|revoke`): from then on the
/// service refuses to sign with it. The state only moves forward.
///
/// # Errors
/// [`ServerError`] for the configuration, an unknown key, the database, or a key already past
/// `state`.
pub fn set_key_state(config_path: &Path, name: &str, state: KeyState) -> Result<(), ServerError> {
    let config = ServiceConfig::load(config_path)?;
    if !config.keys.contains_key(name) {
        let keys = config.keys.keys().map(String::as_str).collect::<Vec<_>>().join(", ");
        return Err(ServerError::UnknownKey { name: name.to_owned(), keys });
    }
    runtime()?.block_on(AdminCommand::SetKeyState(name, state).run_on(&config.database))?;
    Ok(())
}
