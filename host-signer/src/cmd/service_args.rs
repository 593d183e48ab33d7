//! The options every client of the signing service takes: where it is and who is asking.

use std::path::PathBuf;

use anyhow::Context as _;
use fwsign_service::client::{ServiceClient, github_actions_token};

/// Where the signing service is and which identity to present.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct ServiceArgs {
    /// The signing service (http://127.0.0.1:8443); -k then names one of its keys.
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
    /// The audience to request a GitHub Actions identity token for.
    #[arg(long, value_name = "AUD", default_value = "fwsign", requires = "server")]
    audience: String,
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
        } else if let Some(token) = github_actions_token(&self.audience)? {
            token
        } else {
            anyhow::bail!(
                "--server {server}: no identity: give --api-token-env VAR, --identity-token-file FILE or --identity-token-env VAR (in GitHub Actions, grant `permissions: id-token: write`)"
            );
        };
        Ok(Some(ServiceClient::new(server, credential)))
    }
}
