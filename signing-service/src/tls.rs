//! HTTPS: the server's certificate and key, and a listener that hands axum finished TLS streams.
//!
//! TLS is rustls with the `ring` provider (no OpenSSL, no C toolchain beyond what `ring`
//! needs). The files are read and checked at start-up, so a missing or unparsable chain or key
//! stops the service with the file and the field named, never at the first connection.
//!
//! Handshakes run on their own tasks, not in `accept`: a client that connects and stays silent
//! (or speaks plain HTTP) holds only its own connection, for at most [`HANDSHAKE_TIMEOUT`], and
//! never delays anyone else's.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::pki_types::pem::PemObject as _;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::{self, ServerConfig};
use tokio_rustls::server::TlsStream;

use crate::config::{ConfigError, ServiceConfig, TlsFiles};

/// How long a client may take to finish its TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Finished handshakes waiting for axum to take them.
const ACCEPT_QUEUE: usize = 64;

/// Reads the chain and the key and builds the server's TLS configuration (HTTP/1.1 only).
///
/// # Errors
/// [`ConfigError`] naming `tls.cert` or `tls.key` and the file, for unreadable or unparsable
/// PEM, no certificate, no key, or a key that rustls cannot use with the chain.
pub fn server_config(
    config: &ServiceConfig,
    files: &TlsFiles,
) -> Result<Arc<ServerConfig>, ConfigError> {
    let problem = |field: &str, file: &Path, message: String| ConfigError {
        file: config.path.clone(),
        line: None,
        field: field.to_owned(),
        message: format!("{}: {message}", file.display()),
    };
    let chain = CertificateDer::pem_file_iter(&files.cert)
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .map_err(|e| {
            problem("tls.cert", &files.cert, format!("expected PEM certificates ({e})"))
        })?;
    if chain.is_empty() {
        return Err(problem("tls.cert", &files.cert, "no CERTIFICATE block".into()));
    }
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .map_err(|e| problem("tls.key", &files.key, format!("expected a PEM private key ({e})")))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut server = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|builder| builder.with_no_client_auth().with_single_cert(chain, key))
        .map_err(|e| {
            problem("tls.key", &files.key, format!("cannot serve {}: {e}", files.cert.display()))
        })?;
    server.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(server))
}

/// A TCP listener whose connections come out as finished TLS streams.
#[derive(Debug)]
pub struct TlsListener {
    local: SocketAddr,
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    acceptor: tokio::task::JoinHandle<()>,
}

impl TlsListener {
    /// Takes over a bound listener; handshakes start at once, on the current runtime.
    ///
    /// # Errors
    /// The listener's address cannot be read.
    pub fn new(listener: TcpListener, config: Arc<ServerConfig>) -> std::io::Result<Self> {
        let local = listener.local_addr()?;
        let (send, ready) = mpsc::channel(ACCEPT_QUEUE);
        let acceptor = tokio::spawn(accept_loop(listener, TlsAcceptor::from(config), send));
        Ok(Self { local, ready, acceptor })
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.acceptor.abort();
    }
}

async fn accept_loop(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    ready: mpsc::Sender<(TlsStream<TcpStream>, SocketAddr)>,
) {
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(connection) => connection,
            Err(_) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let (acceptor, ready) = (acceptor.clone(), ready.clone());
        tokio::spawn(async move {
            // A failed or slow handshake (plain HTTP, an untrusting client) closes only this
            // connection.
            if let Ok(Ok(tls)) = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await
            {
                let _ = ready.send((tls, peer)).await;
            }
        });
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(connection) => connection,
            // The accept loop runs until this listener is dropped; should it ever end, no
            // connection will come again.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}
