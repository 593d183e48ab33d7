//! `service.toml`: what the service listens on, where it stores, which keys it holds.
//!
//! The key names (`listen`, `database`, `policy`,
//! `[keys.NAME] key/approvals/approvers/sessions/password_env`,
//! `[issuers.NAME] issuer/audience/jwks`, `[groups.NAME] members`, `[tls] cert/key`,
//! `[log] origin/key`, `[limits] per_identity/per_key/burst/queue`) are the documented
//! interface and stay. Everything is checked before the service starts: an unknown key, a
//! missing file or a reference to an undefined group is an error naming the file, the line and
//! the field, so a typo cannot silently weaken the configuration.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use fwsign_keys::key_ref::KeyRef;

use crate::limits::{LimitsConfig, Rate};
use serde::Deserialize;
use toml::Spanned;

use crate::storage::Backend;

/// The largest request body the service reads by default: a few MiB of image, base64-encoded.
pub const DEFAULT_BODY_LIMIT: usize = 16 * 1024 * 1024;
/// The default `header_read_timeout_secs`.
pub const DEFAULT_HEADER_READ_TIMEOUT_SECS: u64 = 10;

/// Signers a PKCS#11 key opens by default: sessions signing in parallel.
pub const DEFAULT_TOKEN_SESSIONS: usize = 4;
/// The most signers one key may open.
pub const MAX_SESSIONS: usize = 64;

/// How long a pending request waits for approval by default.
const DEFAULT_PENDING_EXPIRY_SECS: u64 = 24 * 60 * 60;

/// A configuration that could not be used: the file, the line and the field at fault.
#[derive(Debug, thiserror::Error)]
#[error("{}{}: {field}: {message}", file.display(), line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct ConfigError {
    /// The configuration file (or the file it names).
    pub file: PathBuf,
    /// The 1-based line, when known.
    pub line: Option<usize>,
    /// The field, as a dotted path (`keys.release.key`).
    pub field: String,
    /// What is wrong and what was expected.
    pub message: String,
}

/// The raw file, as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    listen: Spanned<String>,
    database: Spanned<String>,
    policy: Spanned<PathBuf>,
    #[serde(default)]
    pending_expiry_secs: Option<u64>,
    #[serde(default)]
    body_limit: Option<usize>,
    #[serde(default)]
    header_read_timeout_secs: Option<u64>,
    #[serde(default)]
    timestamp_url: Option<Spanned<String>>,
    #[serde(default)]
    keys: BTreeMap<String, RawKey>,
    #[serde(default)]
    issuers: BTreeMap<String, RawIssuer>,
    #[serde(default)]
    groups: BTreeMap<String, RawGroup>,
    #[serde(default)]
    tls: Option<RawTls>,
    #[serde(default)]
    log: Option<RawLog>,
    #[serde(default)]
    limits: Option<RawLimits>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    #[serde(default)]
    per_identity: Option<Spanned<String>>,
    #[serde(default)]
    per_key: Option<Spanned<String>>,
    #[serde(default)]
    burst: Option<Spanned<i64>>,
    #[serde(default)]
    queue: Option<Spanned<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLog {
    origin: Spanned<String>,
    key: Spanned<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKey {
    key: Spanned<String>,
    #[serde(default)]
    approvals: u32,
    #[serde(default)]
    approvers: Option<Spanned<String>>,
    #[serde(default)]
    sessions: Option<Spanned<i64>>,
    #[serde(default)]
    password_env: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIssuer {
    issuer: Spanned<String>,
    audience: String,
    #[serde(default)]
    jwks: Option<Spanned<PathBuf>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGroup {
    members: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    cert: Spanned<PathBuf>,
    key: Spanned<PathBuf>,
}

/// The server's TLS certificate chain and private key, both PEM files.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// The certificate chain, leaf first (`tls.cert`).
    pub cert: PathBuf,
    /// The private key (`tls.key`): PKCS#8, SEC1 or PKCS#1.
    pub key: PathBuf,
}

/// A named signing key.
#[derive(Debug, Clone)]
pub struct KeyConfig {
    /// What `-k` takes: a key file or a PKCS#11 URI.
    pub key: KeyRef,
    /// Approvals needed before a signature (0: none).
    pub approvals: u32,
    /// The group whose members approve.
    pub approvers: Option<String>,
    /// How many signers (PKCS#11 sessions) are open at once.
    pub sessions: usize,
    /// The environment variable holding an encrypted key file's password.
    pub password_env: Option<String>,
}

/// A trusted OIDC issuer of CI identity tokens.
#[derive(Debug, Clone)]
pub struct IssuerConfig {
    /// The exact `iss` value.
    pub issuer: String,
    /// The exact `aud` value.
    pub audience: String,
    /// A JWKS file instead of discovery (air-gapped sites).
    pub jwks: Option<PathBuf>,
}

/// The transparency log every signature goes into (`[log]`).
#[derive(Debug, Clone)]
pub struct LogConfig {
    /// The log's origin: the checkpoints' first line and the log key's name.
    pub origin: String,
    /// The log's Ed25519 key: a key file or a PKCS#11 URI, kept apart from image keys.
    pub key: KeyRef,
}

/// The checked configuration.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// The file it was read from.
    pub path: PathBuf,
    /// Where to listen.
    pub listen: SocketAddr,
    /// The storage URL: `sqlite:PATH` (PATH made absolute) or `postgres://…`.
    pub database: String,
    /// The Cedar policy file.
    pub policy: PathBuf,
    /// How long a pending request may wait for approval.
    pub pending_expiry: Duration,
    /// The largest request body read, in bytes.
    pub body_limit: usize,
    /// How long a client may take to send a request's headers (a slowloris client is cut off).
    pub header_read_timeout: Duration,
    /// An RFC 3161 time-stamping authority that stamps every signature.
    pub timestamp_url: Option<String>,
    /// Signing keys by name.
    pub keys: BTreeMap<String, KeyConfig>,
    /// OIDC issuers by name.
    pub issuers: BTreeMap<String, IssuerConfig>,
    /// Groups of API clients, by name.
    pub groups: BTreeMap<String, Vec<String>>,
    /// TLS, when the service serves HTTPS.
    pub tls: Option<TlsFiles>,
    /// The transparency log, if signatures are logged.
    pub log: Option<LogConfig>,
    /// Rate limits and the request queue bound (`[limits]`).
    pub limits: LimitsConfig,
}

impl ServiceConfig {
    /// Reads and checks a configuration file; relative paths in it are relative to its folder.
    ///
    /// # Errors
    /// [`ConfigError`] naming the file, line and field.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: path.to_owned(),
            line: None,
            field: "(file)".into(),
            message: e.to_string(),
        })?;
        Self::parse(path, &text)
    }

    /// Parses and checks configuration text; `path` names it and anchors relative paths.
    ///
    /// # Errors
    /// [`ConfigError`] naming the file, line and field.
    pub fn parse(path: &Path, text: &str) -> Result<Self, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError {
            file: path.to_owned(),
            line: e.span().map(|span| line_of(text, span.start)),
            field: "(syntax)".into(),
            message: e.message().to_owned(),
        })?;
        Checker { path, text, base: path.parent().unwrap_or(Path::new(".")) }.check(raw)
    }

    /// The groups an API client belongs to: its token's group and every group listing it.
    pub fn groups_of(&self, client: &str, token_group: Option<&str>) -> Vec<String> {
        let listed = self.groups.iter().filter(|(_, members)| members.iter().any(|m| m == client));
        let mut groups: Vec<String> = listed.map(|(name, _)| name.clone()).collect();
        if let Some(group) = token_group.filter(|g| !groups.iter().any(|known| known == g)) {
            groups.push(group.to_owned());
        }
        groups
    }
}

/// Checks the raw file against the file system and itself.
struct Checker<'a> {
    path: &'a Path,
    text: &'a str,
    base: &'a Path,
}

impl Checker<'_> {
    fn error<T>(&self, field: &str, span: &Spanned<T>, message: String) -> ConfigError {
        ConfigError {
            file: self.path.to_owned(),
            line: Some(line_of(self.text, span.span().start)),
            field: field.to_owned(),
            message,
        }
    }

    fn existing_file(&self, field: &str, value: &Spanned<PathBuf>) -> Result<PathBuf, ConfigError> {
        let path = self.base.join(value.get_ref());
        if path.is_file() {
            Ok(path)
        } else {
            Err(self.error(field, value, format!("{}: no such file", path.display())))
        }
    }

    fn check(&self, raw: RawConfig) -> Result<ServiceConfig, ConfigError> {
        let listen = raw.listen.get_ref().parse::<SocketAddr>().map_err(|e| {
            self.error(
                "listen",
                &raw.listen,
                format!("expected ADDRESS:PORT, such as 127.0.0.1:8443 ({e})"),
            )
        })?;
        let database = self.database(&raw.database)?;
        let policy = self.existing_file("policy", &raw.policy)?;
        let groups: BTreeMap<String, Vec<String>> =
            raw.groups.into_iter().map(|(name, group)| (name, group.members)).collect();
        let mut keys = BTreeMap::new();
        for (name, key) in raw.keys {
            keys.insert(name.clone(), self.key(&name, key, &groups)?);
        }
        if let Some(url) = &raw.timestamp_url {
            let text = url.get_ref();
            if !text.starts_with("https://") && !text.starts_with("http://") {
                return Err(self.error(
                    "timestamp_url",
                    url,
                    format!("\"{text}\": expected an http(s):// URL"),
                ));
            }
        }
        let mut issuers = BTreeMap::new();
        for (name, issuer) in raw.issuers {
            issuers.insert(name.clone(), self.issuer(&name, issuer)?);
        }
        let tls = match &raw.tls {
            Some(tls) => Some(TlsFiles {
                cert: self.existing_file("tls.cert", &tls.cert)?,
                key: self.existing_file("tls.key", &tls.key)?,
            }),
            None => None,
        };
        let log = raw.log.map(|log| self.log(log)).transpose()?;
        let limits = raw.limits.map(|limits| self.limits(&limits)).transpose()?.unwrap_or_default();
        Ok(ServiceConfig {
            path: self.path.to_owned(),
            listen,
            database,
            policy,
            pending_expiry: Duration::from_secs(
                raw.pending_expiry_secs.unwrap_or(DEFAULT_PENDING_EXPIRY_SECS),
            ),
            body_limit: raw.body_limit.unwrap_or(DEFAULT_BODY_LIMIT),
            header_read_timeout: Duration::from_secs(
                raw.header_read_timeout_secs.unwrap_or(DEFAULT_HEADER_READ_TIMEOUT_SECS),
            ),
            timestamp_url: raw.timestamp_url.map(Spanned::into_inner),
            keys,
            issuers,
            groups,
            tls,
            log,
            limits,
        })
    }

    fn limits(&self, raw: &RawLimits) -> Result<LimitsConfig, ConfigError> {
        let rate = |field: &str, value: &Option<Spanned<String>>| {
            value
                .as_ref()
                .map(|v| {
                    v.get_ref().parse::<Rate>().map_err(|e| self.error(field, v, e.to_string()))
                })
                .transpose()
        };
        let positive = |field: &str, value: &Option<Spanned<i64>>| {
            value
                .as_ref()
                .map(|v| {
                    u32::try_from(*v.get_ref()).ok().filter(|n| *n > 0).ok_or_else(|| {
                        self.error(
                            field,
                            v,
                            format!("{}: expected a count of at least 1", v.get_ref()),
                        )
                    })
                })
                .transpose()
        };
        Ok(LimitsConfig {
            per_identity: rate("limits.per_identity", &raw.per_identity)?,
            per_key: rate("limits.per_key", &raw.per_key)?,
            burst: positive("limits.burst", &raw.burst)?,
            queue: positive("limits.queue", &raw.queue)?.map(|n| n as usize),
        })
    }

    fn log(&self, raw: RawLog) -> Result<LogConfig, ConfigError> {
        let origin = raw.origin.get_ref();
        if !verifier_core::tlog::is_valid_name(origin) {
            return Err(self.error(
                "log.origin",
                &raw.origin,
                format!(
                    "{origin:?}: expected a log name such as example.com/fw-log (no spaces or +)"
                ),
            ));
        }
        let key = self.key_ref("log.key", &raw.key)?;
        Ok(LogConfig { origin: origin.clone(), key })
    }

    /// A key file (which must exist) or a PKCS#11 URI.
    fn key_ref(&self, field: &str, value: &Spanned<String>) -> Result<KeyRef, ConfigError> {
        let key = value.get_ref().parse::<KeyRef>().map_err(|e| {
            self.error(field, value, format!("expected a key file or a pkcs11: URI ({e})"))
        })?;
        Ok(match key {
            KeyRef::File(file) => {
                let spanned = Spanned::new(value.span(), file);
                KeyRef::File(self.existing_file(field, &spanned)?)
            }
            token => token,
        })
    }

    fn database(&self, value: &Spanned<String>) -> Result<String, ConfigError> {
        let url = value.get_ref();
        let Some(file) = url.strip_prefix("sqlite:") else {
            if matches!(Backend::of(url), Ok(Backend::Postgres)) {
                return Ok(url.clone());
            }
            return Err(self.error(
                "database",
                value,
                format!("\"{url}\": expected sqlite:PATH or postgres://USER@HOST:PORT/DATABASE"),
            ));
        };
        let file = file.strip_prefix("//").unwrap_or(file);
        Ok(format!("sqlite:{}", self.base.join(file).display()))
    }

    fn key(
        &self,
        name: &str,
        raw: RawKey,
        groups: &BTreeMap<String, Vec<String>>,
    ) -> Result<KeyConfig, ConfigError> {
        let key = self.key_ref(&format!("keys.{name}.key"), &raw.key)?;
        let approvers = match (&raw.approvers, raw.approvals) {
            (Some(group), _) if !groups.contains_key(group.get_ref()) => {
                return Err(self.error(
                    &format!("keys.{name}.approvers"),
                    group,
                    format!("no group \"{}\" is defined under [groups]", group.get_ref()),
                ));
            }
            (None, n) if n > 0 => {
                return Err(self.error(
                    &format!("keys.{name}.approvals"),
                    &raw.key,
                    format!("{n} approvals need an approvers group"),
                ));
            }
            (group, _) => group.as_ref().map(|g| g.get_ref().clone()),
        };
        let sessions = self.sessions(name, &key, raw.sessions.as_ref())?;
        let password_env = match (&raw.password_env, &key) {
            (Some(var), KeyRef::Pkcs11(_)) => {
                return Err(self.error(
                    &format!("keys.{name}.password_env"),
                    var,
                    "applies to key files; a token key's PIN comes from its URI or FWSIGN_PKCS11_PIN"
                        .into(),
                ));
            }
            (var, _) => var.as_ref().map(|v| v.get_ref().clone()),
        };
        Ok(KeyConfig { key, approvals: raw.approvals, approvers, sessions, password_env })
    }

    /// `sessions`: 1 to [`MAX_SESSIONS`]; by default 4 for a token key, 1 for a key file.
    fn sessions(
        &self,
        name: &str,
        key: &KeyRef,
        value: Option<&Spanned<i64>>,
    ) -> Result<usize, ConfigError> {
        let Some(value) = value else {
            return Ok(match key {
                KeyRef::Pkcs11(_) => DEFAULT_TOKEN_SESSIONS,
                KeyRef::File(_) => 1,
            });
        };
        usize::try_from(*value.get_ref())
            .ok()
            .filter(|n| (1..=MAX_SESSIONS).contains(n))
            .ok_or_else(|| {
                self.error(
                    &format!("keys.{name}.sessions"),
                    value,
                    format!("{}: expected 1 to {MAX_SESSIONS}", value.get_ref()),
                )
            })
    }

    fn issuer(&self, name: &str, raw: RawIssuer) -> Result<IssuerConfig, ConfigError> {
        let url = raw.issuer.get_ref();
        if !url.starts_with("https://") && !is_loopback_http(url) {
            return Err(self.error(
                &format!("issuers.{name}.issuer"),
                &raw.issuer,
                format!(
                    "\"{url}\": an issuer must be https:// (plain http only on a loopback address)"
                ),
            ));
        }
        let jwks = match &raw.jwks {
            Some(file) => Some(self.existing_file(&format!("issuers.{name}.jwks"), file)?),
            None => None,
        };
        Ok(IssuerConfig { issuer: url.clone(), audience: raw.audience, jwks })
    }
}

/// Whether `url` is plain HTTP to 127.0.0.0/8, `[::1]` or `localhost`.
pub fn is_loopback_http(url: &str) -> bool {
    let Some(rest) = url.strip_prefix("http://") else { return false };
    let host_port = rest.split('/').next().unwrap_or("");
    let host = match host_port.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host_port.split(':').next().unwrap_or(""),
    };
    host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The 1-based line of byte `offset` in `text`.
pub(crate) fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes().iter().take(offset).filter(|b| **b == b'\n').count() + 1
}
