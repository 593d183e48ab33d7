//! Signing through the signing service, for the QEMU scenarios: `fwsign serve` on a loopback
//! port holding the trusted Ed25519 development key (and, for a device that requires the
//! transparency log, appending every signature to its log), one submitter token, and
//! `fwsign sign --server` as CI runs it. The image must also pass `imgtool verify`, so what
//! the device accepts is what MCUboot's own tool accepts.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, Command, Stdio};

use anyhow::{Context, Result, bail};

use crate::sign::{SignRequest, imgtool, run};

/// The service's name for the key.
pub(crate) const KEY_NAME: &str = "dev";
/// The environment variable the client reads its API token from.
const TOKEN_VAR: &str = "FWSIGN_API_TOKEN";

/// The transparency log a service appends its signatures to: `[log]` in its configuration.
pub(crate) struct ServiceLog<'a> {
    /// The checkpoint origin, also the log key's name.
    pub(crate) origin: &'a str,
    /// The log's Ed25519 key file.
    pub(crate) key: &'a Path,
}

/// What a [`LocalService`] holds and where it stores.
pub(crate) struct ServiceSpec<'a> {
    /// The key `dev`: a key file or a PKCS#11 URI.
    pub(crate) key: &'a str,
    /// The storage URL (`sqlite:service.db`, relative to the service's directory).
    pub(crate) database: &'a str,
    /// The transparency log, if any.
    pub(crate) log: Option<&'a ServiceLog<'a>>,
    /// Environment for `fwsign` (a PKCS#11 module and PIN, a SoftHSM2 configuration).
    pub(crate) env: &'a [(&'a str, &'a std::ffi::OsStr)],
}

/// `fwsign serve` as a child process in its own directory; stopped when dropped.
pub(crate) struct LocalService {
    child: Child,
    /// Kept open, so the service's later messages have somewhere to go.
    stderr: BufReader<ChildStderr>,
    url: String,
    token: String,
    config: PathBuf,
}

impl Drop for LocalService {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl LocalService {
    /// Starts a fresh service in `dir` with `key` as its key `dev`, logging its signatures in
    /// `log` if given.
    pub(crate) fn start(
        fwsign: &Path,
        key: &Path,
        dir: &Path,
        log: Option<&ServiceLog<'_>>,
    ) -> Result<Self> {
        let key = key.display().to_string();
        let spec = ServiceSpec { key: &key, database: "sqlite:service.db", log, env: &[] };
        Self::start_with(fwsign, dir, &spec)
    }

    /// Starts a fresh service in `dir` as `spec` describes.
    pub(crate) fn start_with(fwsign: &Path, dir: &Path, spec: &ServiceSpec<'_>) -> Result<Self> {
        if dir.exists() {
            std::fs::remove_dir_all(dir)
                .with_context(|| format!("cannot clear {}", dir.display()))?;
        }
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let policy = format!(
            "permit (principal in Group::\"ci\", action == Action::\"sign\", resource == Key::\"{KEY_NAME}\");\n"
        );
        crate::write_atomically(&dir.join("policy.cedar"), policy.as_bytes())?;
        let mut config = format!(
            "listen = \"127.0.0.1:0\"\ndatabase = \"{}\"\npolicy = \"policy.cedar\"\n\n\
             [keys.{KEY_NAME}]\nkey = \"{}\"\n\n[groups.ci]\nmembers = [\"qemu-scenario\"]\n",
            spec.database, spec.key
        );
        if let Some(log) = spec.log {
            config +=
                &format!("\n[log]\norigin = \"{}\"\nkey = \"{}\"\n", log.origin, log.key.display());
        }
        let config_path = dir.join("service.toml");
        crate::write_atomically(&config_path, config.as_bytes())?;
        let created = Command::new(fwsign)
            .current_dir(dir)
            .envs(spec.env.iter().copied())
            .args(["token", "create", "--config", "service.toml", "--name", "qemu-scenario"])
            .args(["--role", "submitter"])
            .output()
            .context("cannot run fwsign token create")?;
        if !created.status.success() {
            bail!("fwsign token create: {}", String::from_utf8_lossy(&created.stderr).trim());
        }
        let token = String::from_utf8_lossy(&created.stdout).trim().to_owned();
        let mut child = Command::new(fwsign)
            .current_dir(dir)
            .envs(spec.env.iter().copied())
            .args(["serve", "--config", "service.toml"])
            .stderr(Stdio::piped())
            .spawn()
            .context("cannot run fwsign serve")?;
        let stderr = child.stderr.take().context("fwsign serve: no stderr")?;
        let mut service = Self {
            child,
            stderr: BufReader::new(stderr),
            url: String::new(),
            token,
            config: config_path,
        };
        let mut line = String::new();
        service.stderr.read_line(&mut line).context("fwsign serve: reading its address")?;
        match line.trim().rsplit(' ').next() {
            Some(url) if url.starts_with("http://127.0.0.1:") => service.url = url.to_owned(),
            _ => bail!("fwsign serve did not start: {}", line.trim()),
        }
        Ok(service)
    }

    /// The service's URL.
    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// The submitter token.
    pub(crate) fn token(&self) -> &str {
        &self.token
    }

    /// The service's process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The log's verifier key: `fwsign log verifier-key --config`.
    pub(crate) fn log_verifier_key(&self, fwsign: &Path) -> Result<String> {
        let mut command = Command::new(fwsign);
        command.args(["log", "verifier-key", "--config"]).arg(&self.config);
        run(&mut command)
    }
}

/// Signs `request` (its key is the one the service holds) through a fresh local service: see
/// [`sign_with`].
pub(crate) fn sign(fwsign: &Path, profile: &Path, request: &SignRequest<'_>) -> Result<Vec<u8>> {
    let key = request.key.context("signing through the service needs the service's key")?;
    let service = LocalService::start(fwsign, key, &service_dir(request.output), None)?;
    sign_with(&service, fwsign, profile, request)
}

/// Signs `request` (its key is the one `service` holds) with `fwsign sign --server --device
/// PROFILE`, checks it with `imgtool verify`, and returns the image.
pub(crate) fn sign_with(
    service: &LocalService,
    fwsign: &Path,
    profile: &Path,
    request: &SignRequest<'_>,
) -> Result<Vec<u8>> {
    let key = request.key.context("signing through the service needs the service's key")?;
    let mut command = Command::new(fwsign);
    command
        .env(TOKEN_VAR, &service.token)
        .args(["sign", "--server", &service.url, "--api-token-env", TOKEN_VAR, "-k", KEY_NAME])
        .arg("--device")
        .arg(profile)
        .args(["--pad-header", "-v", request.version])
        .args(["-s", &request.security_counter.to_string()])
        .arg(request.input)
        .arg(request.output);
    run(&mut command)?;
    let verified = Command::new(imgtool()?)
        .arg("verify")
        .arg("-k")
        .arg(key)
        .arg(request.output)
        .output()
        .context("cannot run imgtool verify")?;
    let said = String::from_utf8_lossy(&verified.stdout);
    if !verified.status.success() || !said.contains("Image was correctly validated") {
        bail!(
            "imgtool verify refused the service-signed {}: {}{}",
            request.output.display(),
            said.trim(),
            String::from_utf8_lossy(&verified.stderr).trim()
        );
    }
    std::fs::read(request.output)
        .with_context(|| format!("cannot read {}", request.output.display()))
}

/// The service's directory beside the image it signs.
fn service_dir(output: &Path) -> PathBuf {
    output.with_extension("service")
}
