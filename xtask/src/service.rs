//! Signing through the signing service, for the QEMU scenarios: `fwsign serve` on a loopback
//! port holding the trusted Ed25519 development key (and, for a device that requires the
//! transparency log, appending every signature to its log), one submitter token, and
//! `fwsign sign --server` as CI runs it. The image must also pass `imgtool verify`, so what
//! the device accepts is what MCUboot's own tool accepts.

use std::ffi::{OsStr, OsString};
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
    pub(crate) env: &'a [(&'a str, &'a OsStr)],
    /// Top-level lines added to `service.toml` (`[limits]` and the like come after).
    pub(crate) settings: &'a str,
}

/// `fwsign serve` as a child process in its own directory; stopped when dropped.
pub(crate) struct LocalService {
    child: Child,
    /// Kept open, so the service's later messages have somewhere to go.
    stderr: BufReader<ChildStderr>,
    url: String,
    token: String,
    config: PathBuf,
    fwsign: PathBuf,
    env: Vec<(String, OsString)>,
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
        let spec =
            ServiceSpec { key: &key, database: "sqlite:service.db", log, env: &[], settings: "" };
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
        let submitter = submitter_name(dir);
        let mut config = format!(
            "listen = \"127.0.0.1:0\"\ndatabase = \"{}\"\npolicy = \"policy.cedar\"\n{}\n\
             [keys.{KEY_NAME}]\nkey = \"{}\"\n\n[groups.ci]\nmembers = [\"{submitter}\"]\n",
            spec.database, spec.settings, spec.key
        );
        if let Some(log) = spec.log {
            config +=
                &format!("\n[log]\norigin = \"{}\"\nkey = \"{}\"\n", log.origin, log.key.display());
        }
        let config_path = dir.join("service.toml");
        crate::write_atomically(&config_path, config.as_bytes())?;
        let env: Vec<(String, OsString)> = spec
            .env
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect();
        let token = create_token(fwsign, &config_path, &env, &submitter, "submitter")?;
        let (child, stderr, url) = spawn(fwsign, &config_path, &env)?;
        Ok(Self { child, stderr, url, token, config: config_path, fwsign: fwsign.to_owned(), env })
    }

    /// Kills the service with SIGKILL (no chance to finish anything) and waits for it.
    pub(crate) fn kill(&mut self) -> Result<()> {
        self.child.kill().context("cannot kill fwsign serve")?;
        self.child.wait().context("cannot wait for fwsign serve")?;
        Ok(())
    }

    /// Starts the service again on its directory (after [`kill`](Self::kill)); it listens on a
    /// new port.
    pub(crate) fn restart(&mut self) -> Result<()> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        (self.child, self.stderr, self.url) = spawn(&self.fwsign, &self.config, &self.env)?;
        Ok(())
    }

    /// A new API token named `name` with `role`.
    pub(crate) fn create_token(&self, name: &str, role: &str) -> Result<String> {
        create_token(&self.fwsign, &self.config, &self.env, name, role)
    }

    /// The base URL, `http://127.0.0.1:PORT`.
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

/// The submitter token's name, after the service's directory: instances sharing a database
/// each create their own.
fn submitter_name(dir: &Path) -> String {
    let instance = dir.file_name().map(|name| name.to_string_lossy()).unwrap_or_default();
    format!("qemu-scenario-{instance}")
}

/// `fwsign token create` for the service configured by `config`; the token.
fn create_token(
    fwsign: &Path,
    config: &Path,
    env: &[(String, OsString)],
    name: &str,
    role: &str,
) -> Result<String> {
    let dir = config.parent().context("the service configuration has no directory")?;
    let created = Command::new(fwsign)
        .current_dir(dir)
        .envs(env.iter().map(|(name, value)| (name, value)))
        .args(["token", "create", "--config"])
        .arg(config)
        .args(["--name", name, "--role", role])
        .output()
        .context("cannot run fwsign token create")?;
    if !created.status.success() {
        bail!("fwsign token create: {}", String::from_utf8_lossy(&created.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&created.stdout).trim().to_owned())
}

/// Runs `fwsign serve` on `config` (in its directory) and waits until it listens: the child,
/// its stderr and its URL.
fn spawn(
    fwsign: &Path,
    config: &Path,
    env: &[(String, OsString)],
) -> Result<(Child, BufReader<ChildStderr>, String)> {
    let dir = config.parent().context("the service configuration has no directory")?;
    let mut child = Command::new(fwsign)
        .current_dir(dir)
        .envs(env.iter().map(|(name, value)| (name, value)))
        .arg("serve")
        .arg("--config")
        .arg(config)
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot run fwsign serve")?;
    let mut stderr = BufReader::new(child.stderr.take().context("fwsign serve: no stderr")?);
    let mut line = String::new();
    stderr.read_line(&mut line).context("fwsign serve: reading its address")?;
    match line.trim().rsplit(' ').next() {
        Some(url) if url.starts_with("http://127.0.0.1:") => Ok((child, stderr, url.to_owned())),
        _ => {
            let _ = child.kill();
            let _ = child.wait();
            bail!("fwsign serve did not start: {}", line.trim())
        }
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
