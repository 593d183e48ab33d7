//! `fwsign factory report`: the station's device records since a time, as a table, JSON or
//! CSV.

use std::path::PathBuf;
use std::process::ExitCode;

use super::station::{COLUMNS, Database, Station};

/// List the devices recorded by a station since a time: one row per attempt (good, failed,
/// refused or left incomplete), with digests, version, keys and step results.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The station's configuration: its name and database.
    #[arg(long, value_name = "FILE")]
    station: PathBuf,
    /// Only attempts started at or after this time: `YYYY-MM-DD`, `YYYY-MM-DDTHH:MM:SSZ` or
    /// Unix seconds.
    #[arg(long, value_name = "TIME", value_parser = parse_time, default_value = "0")]
    since: i64,
    /// Print a JSON array.
    #[arg(long, conflicts_with = "csv")]
    json: bool,
    /// Print CSV with a header line.
    #[arg(long)]
    csv: bool,
}

pub(crate) fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let station = Station::load(&args.station)?;
    anyhow::ensure!(
        station.database.exists(),
        "station database {} does not exist (nothing provisioned yet?)",
        station.database.display()
    );
    let rows = Database::open(&station)?.since(args.since)?;
    if args.json {
        println!("{}", serde_json::Value::Array(rows));
    } else if args.csv {
        println!("{}", COLUMNS.join(","));
        for row in &rows {
            let cells: Vec<String> = COLUMNS.iter().map(|c| csv_cell(&row[*c])).collect();
            println!("{}", cells.join(","));
        }
    } else {
        for row in &rows {
            println!(
                "{:>5}  {}  {:<24} {:<10} v{:<10} {}{}",
                row["id"],
                time_text(row["started_at"].as_i64().unwrap_or(0)),
                row["identity"].as_str().unwrap_or(""),
                row["status"].as_str().unwrap_or(""),
                row["version"].as_str().unwrap_or(""),
                row["probe"].as_str().unwrap_or(""),
                row["error"].as_str().map(|e| format!("  ({e})")).unwrap_or_default()
            );
        }
        println!("{} record(s)", rows.len());
    }
    Ok(super::super::EXIT_OK)
}

/// A CSV cell: quoted when it holds a comma, quote or line break.
fn csv_cell(value: &serde_json::Value) -> String {
    let text = match value {
        serde_json::Value::Null => String::new(),
        serde_json::Value::String(text) => text.clone(),
        other => other.to_string(),
    };
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}

/// `--since`: Unix seconds, a date or a UTC date and time.
fn parse_time(text: &str) -> Result<i64, String> {
    if let Ok(seconds) = text.parse::<i64>() {
        return Ok(seconds);
    }
    let expected =
        || format!("{text:?}: expected YYYY-MM-DD, YYYY-MM-DDTHH:MM:SSZ or Unix seconds");
    let (date, time) = text.split_once('T').unwrap_or((text, "00:00:00Z"));
    let time = time.strip_suffix('Z').ok_or_else(expected)?;
    let numbers = |s: &str, sep: char| -> Option<Vec<u16>> {
        s.split(sep).map(|n| n.parse().ok()).collect::<Option<Vec<u16>>>()
    };
    let (Some([year, month, day]), Some([hour, minute, second])) = (
        numbers(date, '-').as_deref().and_then(|v| <[u16; 3]>::try_from(v).ok()),
        numbers(time, ':').as_deref().and_then(|v| <[u16; 3]>::try_from(v).ok()),
    ) else {
        return Err(expected());
    };
    let narrow = |n: u16| u8::try_from(n).map_err(|_| expected());
    let moment = der::DateTime::new(
        year,
        narrow(month)?,
        narrow(day)?,
        narrow(hour)?,
        narrow(minute)?,
        narrow(second)?,
    )
    .map_err(|_| expected())?;
    i64::try_from(moment.unix_duration().as_secs()).map_err(|_| expected())
}

/// `YYYY-MM-DDTHH:MM:SSZ` of Unix seconds.
fn time_text(seconds: i64) -> String {
    let duration = std::time::Duration::from_secs(u64::try_from(seconds).unwrap_or(0));
    der::DateTime::from_unix_duration(duration)
        .map_or_else(|_| seconds.to_string(), |t| t.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_accepts_dates_times_and_seconds() {
        assert_eq!(parse_time("86400"), Ok(86_400));
        assert_eq!(parse_time("1970-01-02"), Ok(86_400));
        assert_eq!(parse_time("1970-01-02T00:01:05Z"), Ok(86_465));
        let error = parse_time("yesterday").expect_err("not a time");
        assert!(error.contains("expected YYYY-MM-DD"), "{error}");
        assert!(parse_time("2026-13-01").is_err());
    }

    #[test]
    fn csv_quotes_only_when_needed() {
        assert_eq!(csv_cell(&serde_json::json!("a,b")), "\"a,b\"");
        assert_eq!(csv_cell(&serde_json::json!("say \"x\"")), "\"say \"\"x\"\"\"");
        assert_eq!(csv_cell(&serde_json::json!(42)), "42");
        assert_eq!(csv_cell(&serde_json::Value::Null), "");
    }
}
