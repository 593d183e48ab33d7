//! Asking a time-stamping authority for a token over HTTP (RFC 3161 §3.4).
//!
//! The request is a DER `TimeStampReq` POSTed as `application/timestamp-query`, with a
//! random 64-bit nonce and `certReq` set, so the token carries the TSA's certificate and
//! can be checked later with only the CA. The reply must be granted, echo the nonce and
//! stamp exactly the hash that was sent; otherwise no token is returned.
//!
//! Failures that may pass (the TSA cannot be reached, times out, answers 5xx or "waiting")
//! are retried with a short back-off; a rejection or a malformed reply is not.

use std::time::Duration;

use der::asn1::{OctetString, Uint};
use der::{Decode as _, Encode as _};
use x509_cert::spki::AlgorithmIdentifierOwned;

use super::Token;
use super::asn1::{MessageImprint, PkiStatus, SHA256, TimeStampReq, TimeStampResp};

/// The largest reply accepted (tokens are a few KiB).
const MAX_REPLY: u64 = 1 << 20;

/// Why no token could be had.
#[derive(Debug, thiserror::Error)]
pub enum TimestampError {
    /// The TSA could not be reached.
    #[error("--timestamp-url {url}: TSA unreachable after {attempts} attempt(s): {reason}")]
    Unreachable {
        /// The TSA.
        url: String,
        /// Attempts made.
        attempts: u32,
        /// The last error.
        reason: String,
    },
    /// The TSA did not answer in time.
    #[error(
        "--timestamp-url {url}: no reply within {seconds} s after {attempts} attempt(s) (--timestamp-timeout)"
    )]
    Timeout {
        /// The TSA.
        url: String,
        /// Attempts made.
        attempts: u32,
        /// The timeout.
        seconds: u64,
    },
    /// The TSA answered with an HTTP error.
    #[error("--timestamp-url {url}: HTTP status {status} after {attempts} attempt(s)")]
    Http {
        /// The TSA.
        url: String,
        /// The HTTP status.
        status: u16,
        /// Attempts made.
        attempts: u32,
    },
    /// The TSA refused to stamp.
    #[error("--timestamp-url {url}: the TSA refused: status {status}{detail}")]
    Rejected {
        /// The TSA.
        url: String,
        /// The PKI status.
        status: String,
        /// Its text and failure bits.
        detail: String,
    },
    /// The reply is not a valid answer to the request.
    #[error("--timestamp-url {url}: bad reply: {reason}")]
    BadReply {
        /// The TSA.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// The request could not be built.
    #[error("--timestamp-url: {0}")]
    Request(String),
}

/// A time-stamping authority reached over HTTP.
#[derive(Debug, Clone)]
pub struct TsaClient {
    url: String,
    timeout: Duration,
    retries: u32,
}

/// One attempt's failure: retry or give up.
enum Attempt {
    Retry(TimestampError),
    Fail(TimestampError),
}

impl TsaClient {
    /// A client for `url` that waits `timeout` per attempt and retries `retries` times.
    pub fn new(url: &str, timeout: Duration, retries: u32) -> Self {
        Self { url: url.to_owned(), timeout, retries }
    }

    /// Gets a token over the SHA-256 of `data` (the signature), returning its DER.
    ///
    /// # Errors
    /// [`TimestampError`] saying why none could be had.
    pub fn stamp(&self, data: &[u8]) -> Result<Vec<u8>, TimestampError> {
        use sha2::Digest as _;
        let imprint = sha2::Sha256::digest(data).to_vec();
        let mut nonce = [0u8; 8];
        getrandom::fill(&mut nonce)
            .map_err(|e| TimestampError::Request(format!("random number generator failed: {e}")))?;
        let request = TimeStampReq {
            version: 1,
            message_imprint: MessageImprint {
                hash_algorithm: AlgorithmIdentifierOwned { oid: SHA256, parameters: None },
                hashed_message: OctetString::new(imprint.clone())
                    .map_err(|e| TimestampError::Request(e.to_string()))?,
            },
            req_policy: None,
            nonce: Some(Uint::new(&nonce).map_err(|e| TimestampError::Request(e.to_string()))?),
            cert_req: true,
        }
        .to_der()
        .map_err(|e| TimestampError::Request(e.to_string()))?;
        let mut attempts = 0;
        loop {
            attempts += 1;
            match self.attempt(&request, attempts) {
                Ok(reply) => return self.accept(&reply, &imprint, &nonce),
                Err(Attempt::Retry(_)) if attempts <= self.retries => {
                    std::thread::sleep(Duration::from_millis(250 * u64::from(attempts)));
                }
                Err(Attempt::Retry(error) | Attempt::Fail(error)) => return Err(error),
            }
        }
    }

    fn attempt(&self, request: &[u8], attempts: u32) -> Result<Vec<u8>, Attempt> {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(self.timeout))
            .http_status_as_error(false)
            .build()
            .into();
        let unreachable = |reason: String| TimestampError::Unreachable {
            url: self.url.clone(),
            attempts,
            reason,
        };
        let timeout = || TimestampError::Timeout {
            url: self.url.clone(),
            attempts,
            seconds: self.timeout.as_secs(),
        };
        let transport = |error: ureq::Error| match error {
            ureq::Error::Timeout(_) => Attempt::Retry(timeout()),
            ureq::Error::Io(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                Attempt::Retry(timeout())
            }
            ureq::Error::BadUri(reason) => Attempt::Fail(unreachable(format!("bad URL: {reason}"))),
            other => Attempt::Retry(unreachable(other.to_string())),
        };
        let mut response = agent
            .post(&self.url)
            .header("Content-Type", "application/timestamp-query")
            .header("Accept", "application/timestamp-reply")
            .send(request)
            .map_err(transport)?;
        let status = response.status().as_u16();
        if status != 200 {
            let error = TimestampError::Http { url: self.url.clone(), status, attempts };
            return Err(if status >= 500 || status == 429 {
                Attempt::Retry(error)
            } else {
                Attempt::Fail(error)
            });
        }
        response.body_mut().with_config().limit(MAX_REPLY).read_to_vec().map_err(transport)
    }

    /// Checks a reply against the request and returns the token.
    fn accept(
        &self,
        reply: &[u8],
        imprint: &[u8],
        nonce: &[u8],
    ) -> Result<Vec<u8>, TimestampError> {
        let bad = |reason: String| TimestampError::BadReply { url: self.url.clone(), reason };
        let response =
            TimeStampResp::from_der(reply).map_err(|e| bad(format!("not a TimeStampResp: {e}")))?;
        let status = &response.status;
        if !matches!(status.status, PkiStatus::Granted | PkiStatus::GrantedWithMods) {
            let text = status.status_string.clone().unwrap_or_default().join("; ");
            let fail_info = status.fail_info.as_ref().map(fail_info_names).unwrap_or_default();
            let mut detail = String::new();
            if !text.is_empty() {
                detail.push_str(&format!(" ({text})"));
            }
            if !fail_info.is_empty() {
                detail.push_str(&format!(", failInfo {}", fail_info.join(",")));
            }
            return Err(TimestampError::Rejected {
                url: self.url.clone(),
                status: format!("{:?}", status.status),
                detail,
            });
        }
        let token = response
            .time_stamp_token
            .ok_or_else(|| bad("granted, but no token".into()))?
            .to_der()
            .map_err(|e| bad(e.to_string()))?;
        let decoded = Token::decode(&token).map_err(bad)?;
        let stamped = &decoded.info.message_imprint;
        if stamped.hash_algorithm.oid != SHA256 || stamped.hashed_message.as_bytes() != imprint {
            return Err(bad("the token stamps a different hash than the one sent".into()));
        }
        let echoed = decoded.info.nonce.as_ref().map(Uint::as_bytes);
        let sent = Uint::new(nonce).map_err(|e| bad(e.to_string()))?;
        if echoed != Some(sent.as_bytes()) {
            return Err(bad("the token does not carry the request's nonce".into()));
        }
        Ok(token)
    }
}

/// The names of the `PKIFailureInfo` bits set.
fn fail_info_names(bits: &der::asn1::BitString) -> Vec<&'static str> {
    const NAMES: [(usize, &str); 8] = [
        (0, "badAlg"),
        (2, "badRequest"),
        (5, "badDataFormat"),
        (14, "timeNotAvailable"),
        (15, "unacceptedPolicy"),
        (16, "unacceptedExtension"),
        (17, "addInfoNotAvailable"),
        (25, "systemFailure"),
    ];
    let bytes = bits.raw_bytes();
    NAMES
        .iter()
        .filter(|(bit, _)| bytes.get(bit / 8).is_some_and(|b| b & (0x80 >> (bit % 8)) != 0))
        .map(|(_, name)| *name)
        .collect()
}
