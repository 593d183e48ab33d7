//! Sending the station's finished rows to the signing service (`[service]` in
//! `station.toml`), where each becomes a record of the audit trail.
//!
//! The station's own database stays the record of the line: a service that is away stops
//! nothing. A row is marked with the audit sequence number the service gave it, so a row is
//! sent until the service has it, and every run first sends what earlier runs could not.

use fwsign_service::client::ServiceClient;

use super::station::{Database, ServiceLink};

/// Sends every finished row the service does not have yet; how many were sent.
///
/// # Errors
/// The token variable is unset, or the service refused or could not be reached; the rows sent
/// before that are marked, the others stay for the next run.
pub(crate) fn send_unsent(link: &ServiceLink, database: &mut Database) -> anyhow::Result<usize> {
    let token = std::env::var(&link.token_env).map_err(|_| {
        anyhow::anyhow!(
            "[service]: set {} to the station's API token (fwsign token create --role station)",
            link.token_env
        )
    })?;
    let client = ServiceClient::with_ca_cert(&link.url, token, link.ca_cert.as_deref())?;
    let rows = database.unsent()?;
    for (id, device) in &rows {
        let seq = client.record_device(device)?;
        database.mark_sent(*id, seq)?;
    }
    Ok(rows.len())
}
