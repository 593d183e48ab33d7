//! A local RFC 3161 time-stamping authority for tests: `openssl ts -reply` behind a small
//! HTTP responder on 127.0.0.1.
//!
//! It makes its own PKI (a P-256 root CA and a TSA certificate with the critical
//! timeStamping usage) in a temporary directory. [`Behaviour`] makes it grant, reject,
//! fail with HTTP 500 or answer too late, so clients' error paths can be tested.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::{openssl, run_checked};

/// How the TSA answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// Stamp the request.
    Grant,
    /// Answer with a `rejection` status (the TSA accepts only SHA-512 imprints).
    Reject,
    /// Answer HTTP 500.
    ServerError,
    /// Answer after this delay.
    Slow(Duration),
}

/// A running local TSA.
pub struct LocalTsa {
    dir: tempfile::TempDir,
    /// The URL to POST requests to.
    pub url: String,
    behaviour: Arc<Mutex<Behaviour>>,
    requests: Arc<AtomicUsize>,
}

impl LocalTsa {
    /// Makes the PKI and starts the responder.
    ///
    /// # Panics
    /// When openssl is missing (with the package to install) or a step fails.
    pub fn start() -> Self {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temporary directory: {e}"));
        make_pki(dir.path());
        let listener =
            TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("bind 127.0.0.1: {e}"));
        let port = listener.local_addr().unwrap_or_else(|e| panic!("local address: {e}")).port();
        let tsa = Self {
            url: format!("http://127.0.0.1:{port}/tsa"),
            behaviour: Arc::new(Mutex::new(Behaviour::Grant)),
            requests: Arc::new(AtomicUsize::new(0)),
            dir,
        };
        let state = Responder {
            dir: tsa.dir.path().to_path_buf(),
            behaviour: Arc::clone(&tsa.behaviour),
            requests: Arc::clone(&tsa.requests),
        };
        // The thread lives as long as the test process; it only ever serves loopback.
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                state.serve(stream);
            }
        });
        tsa
    }

    /// Changes how the TSA answers from now on.
    pub fn set_behaviour(&self, behaviour: Behaviour) {
        if let Ok(mut current) = self.behaviour.lock() {
            *current = behaviour;
        }
    }

    /// How many HTTP requests it has received.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    /// The root CA certificate (PEM) that issued the TSA certificate.
    pub fn ca_cert(&self) -> PathBuf {
        self.dir.path().join("ca.crt")
    }

    /// The TSA's own certificate (PEM).
    pub fn tsa_cert(&self) -> PathBuf {
        self.dir.path().join("tsa.crt")
    }
}

struct Responder {
    dir: PathBuf,
    behaviour: Arc<Mutex<Behaviour>>,
    requests: Arc<AtomicUsize>,
}

impl Responder {
    fn serve(&self, stream: TcpStream) {
        let number = self.requests.fetch_add(1, Ordering::SeqCst);
        let Some(body) = read_request(&stream) else {
            return;
        };
        let behaviour = self.behaviour.lock().map(|b| *b).unwrap_or(Behaviour::Grant);
        let reply = match behaviour {
            Behaviour::ServerError => return respond(stream, "500 Internal Server Error", &[]),
            Behaviour::Slow(delay) => {
                std::thread::sleep(delay);
                self.reply(number, &body, "grant")
            }
            Behaviour::Grant => self.reply(number, &body, "grant"),
            Behaviour::Reject => self.reply(number, &body, "reject"),
        };
        match reply {
            Some(reply) => respond(stream, "200 OK", &reply),
            None => respond(stream, "500 Internal Server Error", &[]),
        }
    }

    /// Runs `openssl ts -reply` on the query with the given configuration section.
    fn reply(&self, number: usize, query: &[u8], section: &str) -> Option<Vec<u8>> {
        let query_path = self.dir.join(format!("req{number}.tsq"));
        let reply_path = self.dir.join(format!("resp{number}.tsr"));
        std::fs::write(&query_path, query).ok()?;
        let status = Command::new(openssl())
            .args(["ts", "-reply", "-config"])
            .arg(self.dir.join("tsa.cnf"))
            .args(["-section", section, "-queryfile"])
            .arg(&query_path)
            .arg("-out")
            .arg(&reply_path)
            .output()
            .ok()?;
        if !status.status.success() {
            return None;
        }
        std::fs::read(reply_path).ok()
    }
}

/// Reads one HTTP request and returns its body (Content-Length framing).
fn read_request(stream: &TcpStream) -> Option<Vec<u8>> {
    let mut reader = BufReader::new(stream);
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).ok()?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().ok()?;
        }
    }
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body).ok()?;
    Some(body)
}

fn respond(mut stream: TcpStream, status: &str, body: &[u8]) {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/timestamp-reply\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    // The client may have given up already (timeouts); nothing to do then.
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(body);
}

/// Makes a root CA, a TSA certificate and the `openssl ts` configuration in `dir`.
fn make_pki(dir: &Path) {
    let openssl = openssl();
    let run = |args: &[&str]| {
        run_checked(Command::new(&openssl).current_dir(dir).args(args));
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        "3650",
        "-subj",
        "/CN=fwsign Test Root CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    run(&[
        "req",
        "-new",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        "tsa.key",
        "-out",
        "tsa.csr",
        "-subj",
        "/CN=fwsign Test TSA",
    ]);
    write(
        dir,
        "tsa.ext",
        "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=critical,timeStamping\n",
    );
    run(&[
        "x509",
        "-req",
        "-in",
        "tsa.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "tsa.crt",
        "-days",
        "825",
        "-extfile",
        "tsa.ext",
    ]);
    write(dir, "tsaserial", "01\n");
    let common = format!(
        "dir = {}\nserial = $dir/tsaserial\ncrypto_device = builtin\nsigner_cert = $dir/tsa.crt\n\
         signer_key = $dir/tsa.key\nsigner_digest = sha256\ndefault_policy = 1.2.3.4.1\n\
         other_policies = 1.2.3.4.2\naccuracy = secs:1\nordering = yes\ntsa_name = yes\n\
         ess_cert_id_chain = no\ness_cert_id_alg = sha256\ncerts = $dir/tsa.crt\n",
        dir.display()
    );
    write(
        dir,
        "tsa.cnf",
        &format!(
            "[tsa]\ndefault_tsa = grant\n[grant]\n{common}digests = sha256, sha384, sha512\n\
             [reject]\n{common}digests = sha512\n"
        ),
    );
}

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap_or_else(|e| panic!("{name}: {e}"));
}
