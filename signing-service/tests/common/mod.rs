//! What the service tests share: to-be-signed regions, request bodies, HTTP calls, the trail.

#![allow(dead_code, unreachable_pub)]

pub mod issuer;

use base64::Engine as _;
use fwsign_service::audit::AuditRecord;
use fwsign_service::server::RunningService;

/// A to-be-signed region: 32-byte header, `payload` bytes, a protected security counter.
pub fn region(payload: u32, counter: u32) -> Vec<u8> {
    region_with(payload, counter, &[])
}

/// As [`region`], with `extra` (whole TLV entries) after the security counter.
pub fn region_with(payload: u32, counter: u32, extra: &[u8]) -> Vec<u8> {
    let protected = u16::try_from(12 + extra.len()).expect("protected area size");
    let mut bytes = Vec::new();
    bytes.extend_from_slice(&0x96f3_b83d_u32.to_le_bytes());
    bytes.extend_from_slice(&0u32.to_le_bytes());
    bytes.extend_from_slice(&32u16.to_le_bytes());
    bytes.extend_from_slice(&protected.to_le_bytes());
    bytes.extend_from_slice(&payload.to_le_bytes());
    bytes.extend_from_slice(&0u32.to_le_bytes());
    bytes.extend_from_slice(&[1, 2, 3, 0, 4, 0, 0, 0]);
    bytes.extend_from_slice(&0u32.to_le_bytes());
    bytes.resize(32 + payload as usize, 0x5a);
    bytes.extend_from_slice(&[0x08, 0x69]);
    bytes.extend_from_slice(&protected.to_le_bytes());
    bytes.extend_from_slice(&[0x50, 0, 4, 0]);
    bytes.extend_from_slice(&counter.to_le_bytes());
    bytes.extend_from_slice(extra);
    bytes
}

/// Standard base64.
pub fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// A sign request body for `key` and `images`.
pub fn sign_body(key: &str, images: &[Vec<u8>]) -> String {
    let images: Vec<String> = images.iter().map(|image| b64(image)).collect();
    serde_json::json!({ "key": key, "images": images }).to_string()
}

/// Sends a request; returns the status and the body.
pub fn call(method: &str, url: &str, token: Option<&str>, body: Option<&str>) -> (u16, String) {
    let agent: ureq::Agent =
        ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let mut response = match (method, body) {
        ("POST", Some(body)) => return post(url, token, "application/json", body.as_bytes()),
        _ => {
            let mut request = agent.get(url);
            if let Some(token) = token {
                request = request.header("authorization", &format!("Bearer {token}"));
            }
            request.call()
        }
    }
    .expect("HTTP exchange");
    let status = response.status().as_u16();
    (status, response.body_mut().read_to_string().unwrap_or_default())
}

/// POSTs `body` as `content_type`; returns the status and the reply.
pub fn post(url: &str, token: Option<&str>, content_type: &str, body: &[u8]) -> (u16, String) {
    let agent: ureq::Agent =
        ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let mut request = agent.post(url).header("content-type", content_type);
    if let Some(token) = token {
        request = request.header("authorization", &format!("Bearer {token}"));
    }
    let mut response = request.send(body).expect("HTTP exchange");
    let status = response.status().as_u16();
    (status, response.body_mut().read_to_string().unwrap_or_default())
}

pub fn audit(service: &RunningService, auditor: &str) -> Vec<AuditRecord> {
    let (status, body) = call("GET", &format!("{}/v1/audit", service.url()), Some(auditor), None);
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).expect("audit JSON")
}

pub fn body_of(record: &AuditRecord) -> serde_json::Value {
    serde_json::from_str(&record.body).expect("record body JSON")
}

/// The `database` a test's service uses: `sqlite:service.db` in its directory, or, with
/// `FWSIGN_TEST_DATABASE=postgres`, a new database in this test binary's PostgreSQL cluster
/// (started on first use; it fails, never skips, when PostgreSQL cannot start).
pub fn database() -> String {
    match std::env::var("FWSIGN_TEST_DATABASE").as_deref() {
        Err(_) | Ok("" | "sqlite") => "sqlite:service.db".into(),
        Ok("postgres") => postgres_database(),
        Ok(other) => panic!("FWSIGN_TEST_DATABASE={other}: expected sqlite or postgres"),
    }
}

/// A new database in this test binary's cluster.
pub fn postgres_database() -> String {
    static CLUSTER: std::sync::OnceLock<test_postgres::Cluster> = std::sync::OnceLock::new();
    static DATABASES: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let cluster = CLUSTER.get_or_init(|| {
        test_postgres::Cluster::start().unwrap_or_else(|e| panic!("PostgreSQL for the tests: {e}"))
    });
    let n = DATABASES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    cluster.create_database(&format!("test_{n}")).expect("a test database")
}

/// Runs `sql` (written for both backends) on the database at `url`, as someone with direct
/// access to it would.
pub fn execute(url: &str, sql: &str) {
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        if url.starts_with("sqlite:") {
            let pool = sqlx::SqlitePool::connect(url).await.expect("open SQLite");
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&pool).await.expect("SQL on SQLite");
        } else {
            let pool = sqlx::PgPool::connect(url).await.expect("connect to PostgreSQL");
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                .execute(&pool)
                .await
                .expect("SQL on PostgreSQL");
        }
    });
}
