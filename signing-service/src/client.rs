//! The client side of the API, blocking: what `fwsign sign --server` and `fwsign audit` use.
//!
//! It speaks the same request and reply types the server defines ([`crate::http::sign`]), so
//! the wire format is written down once. Over `https://` it trusts the system's root
//! certificates plus, for a service with a private CA, the one given
//! ([`ServiceClient::with_ca_cert`]).

use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use verifier_core::PublicKey;

use crate::approvals::RequestStatus;
use crate::audit::AuditRecord;
use crate::factory::ProvisionedDevice;
use crate::http::factory::Recorded;
use crate::http::info::ServiceInfo;
use crate::http::keys::KeyInfo;
use crate::http::requests::RequestView;
use crate::http::sign::SignResponse;
use crate::request::{SignOptions, SignRequest, SubmittedImage};

/// The `iss` of GitHub Actions identity tokens.
pub const GITHUB_ACTIONS_ISSUER: &str = "https://token.actions.githubusercontent.com";
/// The audience asked of GitHub Actions when the service names none.
pub const DEFAULT_AUDIENCE: &str = "fwsign";

/// The longest the client waits for one reply.
const TIMEOUT: Duration = Duration::from_secs(120);
/// The largest reply read.
const MAX_REPLY: u64 = 64 * 1024 * 1024;

/// How often a request the service asks to retry (429, 503 with `Retry-After`) is retried.
const RETRIES: u32 = 6;
/// The longest wait before one retry, whatever `Retry-After` says.
const MAX_BACK_OFF: Duration = Duration::from_secs(30);

/// A failed exchange, and when the service said to try again.
struct Retry {
    error: ClientError,
    after: Option<Duration>,
}

impl Retry {
    fn not(error: ClientError) -> Self {
        Self { error, after: None }
    }
}

/// The `Retry-After` of `response`, in seconds (the HTTP-date form is not used by the service).
fn retry_after(response: &ureq::http::Response<ureq::Body>) -> Option<Duration> {
    let value = response.headers().get("retry-after")?.to_str().ok()?;
    value.trim().parse().ok().map(Duration::from_secs)
}

/// The wait before retry number `attempt` (from 0): what the service asked, growing with each
/// attempt so clients refused together spread out, at most [`MAX_BACK_OFF`].
fn back_off(after: Duration, attempt: u32) -> Duration {
    let clock = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    let jitter = clock.map_or(0, |d| d.subsec_nanos() % 250_000_000);
    let spread = Duration::from_nanos(u64::from(jitter));
    (after * (attempt + 1) + spread).min(MAX_BACK_OFF)
}

/// What a POST sends: the body, its media type, and query parameters.
#[derive(Debug, Clone, Copy)]
struct Post<'a> {
    media_type: &'static str,
    body: &'a [u8],
    query: &'a [(&'a str, &'a str)],
}

impl<'a> Post<'a> {
    fn json(body: &'a str) -> Self {
        Self { media_type: "application/json", body: body.as_bytes(), query: &[] }
    }
}

/// Why the service did not give what was asked.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The service could not be reached.
    #[error("{url}: {reason}")]
    Transport {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// The service refused, with its reason.
    #[error("the signing service refused (HTTP {status}): {reason}")]
    Refused {
        /// The HTTP status.
        status: u16,
        /// The service's reason.
        reason: String,
    },
    /// The certificate authority file to trust cannot be used.
    #[error("{}: {reason}", file.display())]
    CaCert {
        /// The file.
        file: PathBuf,
        /// Why.
        reason: String,
    },
    /// The reply is not what the API promises.
    #[error("{url}: unexpected reply: {reason}")]
    BadReply {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
}

/// The reply to a signing request.
#[derive(Debug, serde::Deserialize)]
#[serde(untagged)]
enum SignReply {
    Signed(SignResponse),
    Pending(RequestView),
}

/// What a signing request came to.
#[derive(Debug)]
pub enum SignOutcome {
    /// Signed.
    Signed(Vec<RemoteSignature>),
    /// Waiting for approvals.
    Pending(RequestView),
}

/// A signature made by the service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteSignature {
    /// The signature, in the image TLV's encoding.
    pub signature: Vec<u8>,
    /// The RFC 3161 token over it, if the service stamps.
    pub timestamp: Option<Vec<u8>>,
    /// The `tlog-proof@v1` text for the LOG_PROOF TLV, if the service keeps a log.
    pub log_proof: Option<String>,
}

/// A connection to one service with one credential.
#[derive(Debug)]
pub struct ServiceClient {
    base: String,
    credential: String,
    agent: ureq::Agent,
}

impl ServiceClient {
    /// A client for the service at `base` (`http://127.0.0.1:8443`) presenting `credential`
    /// (an API token or an OIDC ID token).
    /// Over `https://` it trusts Mozilla's root certificates.
    pub fn new(base: &str, credential: String) -> Self {
        Self::with_roots(base, credential, ureq::tls::RootCerts::WebPki)
    }

    /// A client that trusts the system's root certificates plus, when given, the PEM
    /// certificates in `ca_cert` (a service with a certificate from a private CA).
    ///
    /// # Errors
    /// [`ClientError::CaCert`] if `ca_cert` cannot be read or holds no certificate.
    pub fn with_ca_cert(
        base: &str,
        credential: String,
        ca_cert: Option<&Path>,
    ) -> Result<Self, ClientError> {
        Ok(Self::with_roots(base, credential, trust_roots(ca_cert)?))
    }

    fn with_roots(base: &str, credential: String, roots: ureq::tls::RootCerts) -> Self {
        Self { base: base.trim_end_matches('/').to_owned(), credential, agent: agent(roots) }
    }

    /// Sends one request, retrying while the service answers 429 or 503 with `Retry-After`
    /// (its rate limit or its queue bound: nothing was done), at most [`RETRIES`] times.
    fn exchange<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        post: Option<Post<'_>>,
    ) -> Result<T, ClientError> {
        let mut attempt = 0;
        loop {
            match self.exchange_once(path, post) {
                Err(Retry { after: Some(after), .. }) if attempt < RETRIES => {
                    std::thread::sleep(back_off(after, attempt));
                    attempt += 1;
                }
                result => return result.map_err(|retry| retry.error),
            }
        }
    }

    fn exchange_once<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        post: Option<Post<'_>>,
    ) -> Result<T, Retry> {
        let url = format!("{}{path}", self.base);
        let transport = |e: ureq::Error| {
            Retry::not(ClientError::Transport { url: url.clone(), reason: e.to_string() })
        };
        let bearer = format!("Bearer {}", self.credential);
        let mut response = match post {
            Some(Post { media_type, body, query }) => self
                .agent
                .post(&url)
                .query_pairs(query.iter().copied())
                .header("authorization", &bearer)
                .header("content-type", media_type)
                .send(body),
            None => self.agent.get(&url).header("authorization", &bearer).call(),
        }
        .map_err(transport)?;
        let status = response.status().as_u16();
        let after = retry_after(&response);
        let text = response
            .body_mut()
            .with_config()
            .limit(MAX_REPLY)
            .read_to_string()
            .map_err(transport)?;
        if !(200..=202).contains(&status) {
            let reason = serde_json::from_str::<serde_json::Value>(&text)
                .ok()
                .and_then(|json| json["error"].as_str().map(ToOwned::to_owned))
                .unwrap_or(text);
            let after = after.filter(|_| status == 429 || status == 503);
            return Err(Retry { error: ClientError::Refused { status, reason }, after });
        }
        serde_json::from_str(&text).map_err(|e| {
            Retry::not(ClientError::BadReply { url: url.clone(), reason: e.to_string() })
        })
    }

    /// The public key of the service's key `name`.
    ///
    /// # Errors
    /// [`ClientError`]; an unknown key is [`ClientError::Refused`] with 404.
    pub fn public_key(&self, name: &str) -> Result<PublicKey, ClientError> {
        let info: KeyInfo = self.exchange(&format!("/v1/keys/{name}"), None)?;
        let der = base64::engine::general_purpose::STANDARD.decode(&info.public_key).ok();
        der.and_then(|der| PublicKey::from_spki_der(&der)).ok_or_else(|| ClientError::BadReply {
            url: format!("{}/v1/keys/{name}", self.base),
            reason: "public_key is not a base64 Ed25519 or P-256 SubjectPublicKeyInfo".into(),
        })
    }

    /// Has the service sign to-be-signed regions with key `name`, all or none; per region the
    /// signature and, when the service has a TSA, the RFC 3161 token over it. A key that needs
    /// approvals answers with the waiting request instead. One region is sent as it is
    /// (`application/octet-stream`), several as JSON.
    ///
    /// # Errors
    /// [`ClientError`], [`ClientError::Refused`] carrying the service's reason.
    pub fn sign(
        &self,
        name: &str,
        regions: &[&[u8]],
        hash: &str,
        pure: bool,
    ) -> Result<SignOutcome, ClientError> {
        let reply = if let [region] = regions {
            let query =
                [("key", name), ("hash", hash), ("pure", if pure { "true" } else { "false" })];
            let post = Post { media_type: "application/octet-stream", body: region, query: &query };
            self.exchange("/v1/sign", Some(post))?
        } else {
            let request = SignRequest {
                key: name.to_owned(),
                images: regions
                    .iter()
                    .map(|r| base64::engine::general_purpose::STANDARD.encode(r))
                    .collect(),
                hash: Some(hash.to_owned()),
                pure,
            };
            let body = serde_json::to_string(&request).map_err(|e| ClientError::BadReply {
                url: self.base.clone(),
                reason: e.to_string(),
            })?;
            self.exchange("/v1/sign", Some(Post::json(&body)))?
        };
        match reply {
            SignReply::Signed(reply) => self.signatures(&reply).map(SignOutcome::Signed),
            SignReply::Pending(view) => Ok(SignOutcome::Pending(view)),
        }
    }

    /// The signatures of a reply, decoded.
    ///
    /// # Errors
    /// [`ClientError::BadReply`] for bad base64.
    pub fn signatures(&self, reply: &SignResponse) -> Result<Vec<RemoteSignature>, ClientError> {
        let decode = |text: &str| {
            base64::engine::general_purpose::STANDARD.decode(text).map_err(|e| {
                ClientError::BadReply {
                    url: format!("{}/v1/sign", self.base),
                    reason: e.to_string(),
                }
            })
        };
        reply
            .signatures
            .iter()
            .map(|s| {
                Ok(RemoteSignature {
                    signature: decode(&s.signature)?,
                    timestamp: s.timestamp.as_deref().map(decode).transpose()?,
                    log_proof: s.log_proof.clone(),
                })
            })
            .collect()
    }

    /// A request waiting for approval (or done with it).
    ///
    /// # Errors
    /// [`ClientError`].
    pub fn request(&self, id: &str) -> Result<RequestView, ClientError> {
        self.exchange(&format!("/v1/requests/{id}"), None)
    }

    /// The sign request `id` as it was submitted: its key and mode, and its to-be-signed
    /// regions, parsed.
    ///
    /// # Errors
    /// [`ClientError`].
    pub fn submitted(&self, id: &str) -> Result<(SignOptions, Vec<SubmittedImage>), ClientError> {
        let path = format!("/v1/requests/{id}/images");
        let request: SignRequest = self.exchange(&path, None)?;
        request.decode().map_err(|e| ClientError::BadReply {
            url: format!("{}{path}", self.base),
            reason: e.to_string(),
        })
    }

    /// Approves a request (approver role).
    ///
    /// # Errors
    /// [`ClientError`].
    pub fn approve(&self, id: &str) -> Result<RequestView, ClientError> {
        self.exchange(&format!("/v1/requests/{id}/approve"), Some(Post::json("")))
    }

    /// Denies a request (approver role).
    ///
    /// # Errors
    /// [`ClientError`].
    pub fn deny(&self, id: &str) -> Result<RequestView, ClientError> {
        self.exchange(&format!("/v1/requests/{id}/deny"), Some(Post::json("")))
    }

    /// Polls a waiting request with back-off until it is signed, ended, or `patience` is over.
    ///
    /// # Errors
    /// [`ClientError::Refused`] if it was denied, expired or is still waiting.
    pub fn wait_for(
        &self,
        id: &str,
        patience: Duration,
    ) -> Result<Vec<RemoteSignature>, ClientError> {
        let deadline = std::time::Instant::now() + patience;
        let mut pause = Duration::from_secs(1);
        loop {
            let view = self.request(id)?;
            match (view.status, &view.result) {
                (RequestStatus::Signed, Some(reply)) => return self.signatures(reply),
                (RequestStatus::Pending, _) => {}
                (status, _) => {
                    return Err(ClientError::Refused {
                        status: 409,
                        reason: format!("request {id} was {}", status.name()),
                    });
                }
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return Err(ClientError::Refused {
                    status: 202,
                    reason: format!(
                        "request {id} still waits for approval ({} of {} from {}); run the same command again later to fetch the signature",
                        view.approvals.len(),
                        view.needed,
                        view.approvers
                    ),
                });
            }
            std::thread::sleep(pause.min(left));
            pause = (pause * 3 / 2).min(Duration::from_secs(30));
        }
    }

    /// What the service tells anyone about itself (`GET /v1/info`).
    ///
    /// # Errors
    /// [`ClientError`].
    pub fn info(&self) -> Result<ServiceInfo, ClientError> {
        self.exchange("/v1/info", None)
    }

    /// The audience the service expects of GitHub Actions identity tokens: that of its
    /// issuer `https://token.actions.githubusercontent.com`, else [`DEFAULT_AUDIENCE`] (also
    /// for a service without `/v1/info`).
    ///
    /// # Errors
    /// [`ClientError`] if the service cannot be asked.
    pub fn github_actions_audience(&self) -> Result<String, ClientError> {
        let info = match self.info() {
            Ok(info) => info,
            Err(ClientError::Refused { status: 404, .. }) => return Ok(DEFAULT_AUDIENCE.into()),
            Err(error) => return Err(error),
        };
        let github = info.issuers.into_iter().find(|i| i.issuer == GITHUB_ACTIONS_ISSUER);
        Ok(github.map_or_else(|| DEFAULT_AUDIENCE.to_owned(), |issuer| issuer.audience))
    }

    /// The audit records after `after`.
    ///
    /// # Errors
    /// [`ClientError`].
    pub fn audit(&self, after: u64) -> Result<Vec<AuditRecord>, ClientError> {
        self.exchange(&format!("/v1/audit?after={after}"), None)
    }

    /// Records a provisioned device in the audit trail (station role); its sequence number.
    ///
    /// # Errors
    /// [`ClientError`].
    pub fn record_device(&self, device: &ProvisionedDevice) -> Result<u64, ClientError> {
        let body = serde_json::to_string(device)
            .map_err(|e| ClientError::BadReply { url: self.base.clone(), reason: e.to_string() })?;
        let recorded: Recorded = self.exchange("/v1/factory/devices", Some(Post::json(&body)))?;
        Ok(recorded.seq)
    }
}

/// The certificates of a PEM file.
/// The system's root certificates plus, when given, the PEM certificates in `ca_cert`.
fn trust_roots(ca_cert: Option<&Path>) -> Result<ureq::tls::RootCerts, ClientError> {
    let mut roots: Vec<ureq::tls::Certificate<'static>> = rustls_native_certs::load_native_certs()
        .certs
        .iter()
        .map(|der| ureq::tls::Certificate::from_der(der).to_owned())
        .collect();
    if let Some(file) = ca_cert {
        roots.extend(read_ca_cert(file)?);
    }
    Ok(if roots.is_empty() {
        ureq::tls::RootCerts::WebPki
    } else {
        ureq::tls::RootCerts::from(roots)
    })
}

/// An agent that trusts `roots`, gives every status to the caller and times out.
fn agent(roots: ureq::tls::RootCerts) -> ureq::Agent {
    let tls = ureq::tls::TlsConfig::builder().root_certs(roots).build();
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(TIMEOUT))
        .tls_config(tls)
        .build()
        .into()
}

fn read_ca_cert(file: &Path) -> Result<Vec<ureq::tls::Certificate<'static>>, ClientError> {
    let error = |reason: String| ClientError::CaCert { file: file.to_owned(), reason };
    let pem = std::fs::read(file).map_err(|e| error(e.to_string()))?;
    let mut certs = Vec::new();
    for item in ureq::tls::parse_pem(&pem) {
        if let ureq::tls::PemItem::Certificate(cert) = item.map_err(|e| error(e.to_string()))? {
            certs.push(cert);
        }
    }
    if certs.is_empty() {
        return Err(error("expected PEM certificates, found no CERTIFICATE block".into()));
    }
    Ok(certs)
}

/// A reader of a service's public transparency log (`GET /log/…`, no credential).
#[derive(Debug)]
pub struct LogReader {
    base: String,
    agent: ureq::Agent,
}

impl LogReader {
    /// A reader of the log served at `base` (`http://127.0.0.1:8443`), trusting the system's
    /// root certificates plus, when given, those in `ca_cert` over `https://`.
    ///
    /// # Errors
    /// [`ClientError::CaCert`] if `ca_cert` cannot be read or holds no certificate.
    pub fn new(base: &str, ca_cert: Option<&Path>) -> Result<Self, ClientError> {
        let agent = agent(trust_roots(ca_cert)?);
        Ok(Self { base: base.trim_end_matches('/').to_owned(), agent })
    }

    /// The newest signed checkpoint.
    ///
    /// # Errors
    /// [`ClientError`]; [`ClientError::Refused`] with 404 if the service keeps no log.
    pub fn checkpoint(&self) -> Result<String, ClientError> {
        let bytes = self.get("/log/checkpoint")?;
        String::from_utf8(bytes).map_err(|_| ClientError::BadReply {
            url: format!("{}/log/checkpoint", self.base),
            reason: "the checkpoint is not UTF-8".into(),
        })
    }

    /// A tile or entry bundle, by its path below the log (`tile/0/000.p/7`).
    ///
    /// # Errors
    /// [`ClientError`].
    pub fn tile(&self, path: &str) -> Result<Vec<u8>, ClientError> {
        self.get(&format!("/log/{path}"))
    }

    fn get(&self, path: &str) -> Result<Vec<u8>, ClientError> {
        let url = format!("{}{path}", self.base);
        let transport =
            |e: ureq::Error| ClientError::Transport { url: url.clone(), reason: e.to_string() };
        let mut response = self.agent.get(&url).call().map_err(transport)?;
        let status = response.status().as_u16();
        let body =
            response.body_mut().with_config().limit(MAX_REPLY).read_to_vec().map_err(transport)?;
        if status != 200 {
            let reason = format!("{url}: {}", String::from_utf8_lossy(&body).trim());
            return Err(ClientError::Refused { status, reason });
        }
        Ok(body)
    }
}

/// The GitHub Actions identity token for `audience`, when running in a job that may have one
/// (`permissions: id-token: write` sets `ACTIONS_ID_TOKEN_REQUEST_URL` and `…_TOKEN`).
///
/// # Errors
/// [`ClientError`] if the variables are set but no token can be had.
pub fn github_actions_token(audience: &str) -> Result<Option<String>, ClientError> {
    let (Ok(url), Ok(bearer)) = (
        std::env::var("ACTIONS_ID_TOKEN_REQUEST_URL"),
        std::env::var("ACTIONS_ID_TOKEN_REQUEST_TOKEN"),
    ) else {
        return Ok(None);
    };
    let separator = if url.contains('?') { '&' } else { '?' };
    let client = ServiceClient::new(&format!("{url}{separator}audience={audience}"), bearer);
    let reply: serde_json::Value = client.exchange("", None)?;
    reply["value"].as_str().map(|token| Some(token.to_owned())).ok_or_else(|| {
        ClientError::BadReply {
            url: "ACTIONS_ID_TOKEN_REQUEST_URL".into(),
            reason: "no value".into(),
        }
    })
}
