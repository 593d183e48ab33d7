//! A real cluster: started, given a database that `psql` can use, restarted with its data,
//! and gone (server and directory) once dropped.

#![allow(clippy::unwrap_used)]

use std::process::Command;

use test_postgres::Cluster;

/// Runs `sql` with `psql` on `url`; its trimmed output.
fn psql(url: &str, sql: &str) -> Result<String, String> {
    let output = Command::new("psql")
        .args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", url, "-c", sql])
        .output()
        .map_err(|e| format!("psql: {e} (apt-get install postgresql-client)"))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    }
}

#[test]
fn a_cluster_serves_databases_keeps_them_over_a_restart_and_is_gone_when_dropped() {
    let cluster = Cluster::start().unwrap();
    let url = cluster.create_database("first").unwrap();
    assert_eq!(url, format!("postgres://postgres@127.0.0.1:{}/first", cluster.port()));
    psql(&url, "CREATE TABLE t (v INTEGER); INSERT INTO t VALUES (41)").unwrap();
    cluster.restart().unwrap();
    assert_eq!(psql(&url, "SELECT v + 1 FROM t").unwrap(), "42");
    cluster.stop().unwrap();
    assert!(psql(&url, "SELECT 1").is_err(), "a stopped cluster refuses connections");
    cluster.restart().unwrap();
    assert_eq!(psql(&url, "SELECT v FROM t").unwrap(), "41");
    let error = cluster.create_database("first").unwrap_err().to_string();
    assert!(error.contains("createdb first") && error.contains("already exists"), "{error}");
    let directory = cluster.directory().to_owned();
    drop(cluster);
    assert!(psql(&url, "SELECT 1").is_err(), "a dropped cluster is stopped");
    assert!(!directory.exists(), "{} is removed", directory.display());
}
