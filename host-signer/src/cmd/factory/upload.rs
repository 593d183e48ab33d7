//! Sending the station's finished rows to the signing service (`[service]` in
//! `station.toml`), where each becomes a record of the audit trail.
//!
//! The station's own database stays the record of the line: a service that is away stops
//! nothing. A row is marked with the audit sequence number the service gave it, so a row is
//! sent until the service has it, and every run first sends what earlier runs could not. A row
//! the service refuses as it is (a station and a service of different versions, say) is
//! reported and offered again next run, but holds back none of the rows after it.

use fwsign_service::client::{ClientError, ServiceClient};

use super::station::{Database, ServiceLink};

/// What one sending of the backlog came to.
#[derive(Debug, Default)]
pub(crate) struct Sent {
    /// Rows the service recorded.
    pub(crate) recorded: usize,
    /// Rows the service refused as they are (a 4xx about the record itself): the device's
    /// identity and the service's reason. They stay unsent and are offered again next run,
    /// but no longer hold back the rows after them.
    pub(crate) refused: Vec<(String, String)>,
}

/// Sends every finished row the service does not have yet.
///
/// # Errors
/// The token variable is unset, or the service could not be reached or refused the station
/// itself (its token, its role, its rate); the rows sent before that are marked, the others
/// stay for the next run.
pub(crate) fn send_unsent(link: &ServiceLink, database: &mut Database) -> anyhow::Result<Sent> {
    let token = std::env::var(&link.token_env).map_err(|_| {
        anyhow::anyhow!(
            "[service]: set {} to the station's API token (fwsign token create --role station)",
            link.token_env
        )
    })?;
    let client = ServiceClient::with_ca_cert(&link.url, token, link.ca_cert.as_deref())?;
    let mut sent = Sent::default();
    for (id, device) in database.unsent()? {
        match client.record_device(&device) {
            Ok(seq) => {
                database.mark_sent(id, seq)?;
                sent.recorded += 1;
            }
            Err(ClientError::Refused { status, reason }) if refuses_the_record(status) => {
                sent.refused.push((device.identity, format!("HTTP {status}: {reason}")));
            }
            Err(error) => return Err(error.into()),
        }
    }
    Ok(sent)
}

/// Whether a refusal with `status` is about the record sent, not about the station (401,
/// 403, 429) or the service (5xx), which would refuse every other row too.
fn refuses_the_record(status: u16) -> bool {
    matches!(status, 400 | 409 | 413 | 422)
}
