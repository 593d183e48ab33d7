//! The options every client of the signing service takes: where it is and who is asking.

use std::path::PathBuf;

use anyhow::Context as _;
use fwsign_service::client::{ServiceClient, github_actions_token};

/// Where the signing service is and which identity to present.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct ServiceArgs {
    /// The signing service (https://signing.example:8443, or http:// on loopback); -k then
    /// names one of its keys.
    #[arg(long, value_name = "URL", env = "FWSIGN_SERVER")]
    pub(crate) server: Option<String>,
    /// Present the API token in this environment variable (people, factory stations).
    #[arg(long, value_name = "VAR", requires = "server")]
    api_token_env: Option<String>,
    /// Present the OIDC identity token in this file.
    #[arg(long, value_name = "FILE", requires = "server", conflicts_with = "api_token_env")]
    identity_token_file: Option<PathBuf>,
    /// Present the OIDC identity token in this environment variable (GitLab `id_tokens:`).
    #[arg(long, value_name = "VAR", requires = "server", conflicts_with_all = ["api_token_env", "identity_token_file"])]
    identity_token_env: Option<String>,
    /// The audience to request a GitHub Actions identity token for [default: the one the
    /// service names for GitHub's issuer at /v1/info, else fwsign].
    #[arg(long, value_name = "AUD", requires = "server")]
    audience: Option<String>,
    /// Trust the CA certificates in this PEM file, besides the system's, for an https:// service.
    #[arg(long, value_name = "FILE", env = "FWSIGN_CA_CERT")]
    ca_cert: Option<PathBuf>,
}

fn from_env(var: &str, option: &str) -> anyhow::Result<String> {
    let value = std::env::var(var)
        .with_context(|| format!("{option} {var}: the environment variable is not set"))?;
    Ok(value.trim().to_owned())
}

impl ServiceArgs {
    /// A client for `--server` with the chosen identity.
    pub(crate) fn client(&self) -> anyhow::Result<Option<ServiceClient>> {
        let Some(server) = &self.server else { return Ok(None) };
        let credential = if let Some(var) = &self.api_token_env {
            from_env(var, "--api-token-env")?
        } else if let Some(var) = &self.identity_token_env {
            from_env(var, "--identity-token-env")?
        } else if let Some(file) = &self.identity_token_file {
            std::fs::read_to_string(file)
                .with_context(|| format!("--identity-token-file {}", file.display()))?
                .trim()
                .to_owned()
        } else if let Some(token) = self.github_actions_identity(server)? {
            token
        } else {
            anyhow::bail!(
                "--server {server}: no identity: give --api-token-env VAR, --identity-token-file FILE or --identity-token-env VAR (in GitHub Actions, grant `permissions: id-token: write`)"
            );
        };
        Ok(Some(self.connect(server, credential)?))
    }

    fn connect(&self, server: &str, credential: String) -> anyhow::Result<ServiceClient> {
        ServiceClient::with_ca_cert(server, credential, self.ca_cert.as_deref())
            .context("--ca-cert")
    }

    /// In a GitHub Actions job, an identity token for `--audience` or the service's audience.
    fn github_actions_identity(&self, server: &str) -> anyhow::Result<Option<String>> {
        if std::env::var_os("ACTIONS_ID_TOKEN_REQUEST_URL").is_none() {
            return Ok(None);
        }
        let audience = match &self.audience {
            Some(audience) => audience.clone(),
            None => self
                .connect(server, String::new())?
                .github_actions_audience()
                .with_context(|| format!("--server {server}: asking for its audience"))?,
        };
        Ok(github_actions_token(&audience)?)
    }
}
