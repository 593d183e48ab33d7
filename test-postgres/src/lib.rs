//! A throwaway PostgreSQL cluster for tests and benchmarks, not for production.
//!
//! [`Cluster::start`] runs Debian's PostgreSQL server binaries (the newest under
//! `/usr/lib/postgresql/*/bin`): `initdb` in a temporary directory, then `pg_ctl start` on a
//! free loopback port with trust authentication, as user `postgres` when the caller is root
//! (PostgreSQL refuses to run as root). Tests make one database each with
//! [`Cluster::create_database`]; fault tests [`restart`](Cluster::restart) it under load. The
//! cluster stops and its directory is removed when the [`Cluster`] is dropped, and also when
//! the process ends without dropping it (a cluster kept in a `static`): a watcher process
//! does both once the pipe from this process closes. When PostgreSQL is not installed or will
//! not start, the error says what to install; it is never a reason to skip a test.

use std::io::Write as _;
use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::fs::MetadataExt as _;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Output, Stdio};

/// Where Debian installs the server binaries, one directory per major version.
const INSTALL_ROOT: &str = "/usr/lib/postgresql";
/// The superuser the cluster is made with.
const SUPERUSER: &str = "postgres";
/// Start attempts, each on a newly picked free port.
const START_ATTEMPTS: usize = 3;

/// Why a cluster could not be made or used.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// No server binaries.
    #[error(
        "PostgreSQL is not installed (no {INSTALL_ROOT}/*/bin/initdb): install it with `apt-get install postgresql`"
    )]
    NotInstalled,
    /// A PostgreSQL program failed.
    #[error(
        "{what} failed ({status}): {output}; is PostgreSQL (`apt-get install postgresql`) working?"
    )]
    Command {
        /// The command.
        what: String,
        /// Its exit status.
        status: String,
        /// Its output, and the server log's end where there is one.
        output: String,
    },
    /// A file or process operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        source: std::io::Error,
    },
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ClusterError {
    let what = what.into();
    move |source| ClusterError::Io { what, source }
}

/// A running PostgreSQL cluster in a temporary directory.
#[derive(Debug)]
pub struct Cluster {
    bin: PathBuf,
    root: PathBuf,
    port: u16,
    as_postgres: bool,
    /// The watcher's stdin: closing it stops the cluster and removes `root`.
    watcher: Option<(Child, ChildStdin)>,
}

impl Cluster {
    /// Initialises and starts a cluster on a free loopback port.
    ///
    /// # Errors
    /// [`ClusterError::NotInstalled`] without PostgreSQL, else what failed.
    pub fn start() -> Result<Self, ClusterError> {
        let bin = newest_bin_dir()?;
        let root = tempfile::Builder::new()
            .prefix("fwsign-pg")
            .tempdir()
            .map_err(io("creating the cluster's directory"))?
            .keep();
        let as_postgres = running_as_root()?;
        let mut cluster = Self { bin, root, port: 0, as_postgres, watcher: None };
        cluster.watch()?;
        if as_postgres {
            run(Command::new("chown").args(["-R", SUPERUSER]).arg(&cluster.root), "chown")?;
        }
        cluster.initdb()?;
        let mut attempt = 0;
        loop {
            cluster.port = free_port()?;
            match cluster.configure().and_then(|()| cluster.pg_ctl("start")) {
                Ok(()) => return Ok(cluster),
                Err(error) if attempt + 1 >= START_ATTEMPTS => return Err(error),
                Err(_) => attempt += 1,
            }
        }
    }

    /// The cluster's directory (data, server log, socket), removed when it stops.
    pub fn directory(&self) -> &std::path::Path {
        &self.root
    }

    /// The loopback port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Creates the database `name` and returns its URL
    /// (`postgres://postgres@127.0.0.1:PORT/NAME`).
    ///
    /// # Errors
    /// What `createdb` said.
    pub fn create_database(&self, name: &str) -> Result<String, ClusterError> {
        let mut createdb = Command::new(self.bin.join("createdb"));
        createdb.args(["-h", "127.0.0.1", "-U", SUPERUSER, "-p", &self.port.to_string(), name]);
        run(&mut createdb, &format!("createdb {name}"))?;
        Ok(format!("postgres://{SUPERUSER}@127.0.0.1:{}/{name}", self.port))
    }

    /// Stops the server (fast shutdown: open connections are closed) and starts it again on
    /// the same port, with the same data.
    ///
    /// # Errors
    /// What `pg_ctl` said.
    pub fn restart(&self) -> Result<(), ClusterError> {
        self.pg_ctl("restart")
    }

    /// Stops the server (fast shutdown); [`restart`](Self::restart) starts it again.
    ///
    /// # Errors
    /// What `pg_ctl` said.
    pub fn stop(&self) -> Result<(), ClusterError> {
        self.pg_ctl("stop")
    }

    fn data(&self) -> PathBuf {
        self.root.join("data")
    }

    /// A command for a server program, run as `postgres` when this process is root.
    fn server_command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        if self.as_postgres {
            let mut command = Command::new("runuser");
            command.args(["-u", SUPERUSER, "--"]).arg(path);
            command
        } else {
            Command::new(path)
        }
    }

    fn initdb(&self) -> Result<(), ClusterError> {
        let mut initdb = self.server_command("initdb");
        initdb.arg("-D").arg(self.data());
        initdb.args(["-U", SUPERUSER, "--auth=trust", "--encoding=UTF8", "--no-sync"]);
        run(&mut initdb, "initdb")
    }

    /// Writes the settings `initdb` left at their defaults: loopback only, this port, the
    /// socket inside the cluster's directory.
    fn configure(&self) -> Result<(), ClusterError> {
        let path = self.data().join("postgresql.auto.conf");
        let settings = format!(
            "listen_addresses = '127.0.0.1'\nport = {}\nunix_socket_directories = '{}'\n\
             max_connections = 200\nshared_buffers = 32MB\n",
            self.port,
            self.root.display()
        );
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(io(format!("opening {}", path.display())))?;
        file.write_all(settings.as_bytes()).map_err(io(format!("writing {}", path.display())))
    }

    /// Runs `pg_ctl ACTION`, waiting until it is done; a failure carries the server log's end.
    fn pg_ctl(&self, action: &str) -> Result<(), ClusterError> {
        let log = self.root.join("server.log");
        let mut pg_ctl = self.server_command("pg_ctl");
        pg_ctl.arg("-D").arg(self.data()).arg("-l").arg(&log);
        pg_ctl.args(["-w", "-t", "60", "-m", "fast", action]);
        run(&mut pg_ctl, &format!("pg_ctl {action}")).map_err(|error| match error {
            ClusterError::Command { what, status, output } => {
                let log = std::fs::read_to_string(&log).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(10).collect();
                let tail: Vec<&str> = tail.into_iter().rev().collect();
                ClusterError::Command {
                    what,
                    status,
                    output: format!("{output}; server log: {}", tail.join(" | ")),
                }
            }
            other => other,
        })
    }

    /// Starts the watcher: it waits for its stdin to close (this cluster dropped or this
    /// process gone), then stops the server and removes the directory.
    fn watch(&mut self) -> Result<(), ClusterError> {
        let stop = self.server_command("pg_ctl");
        let mut script = format!("read _; {} ", shell_words(&stop));
        script.push_str(&format!(
            "-D '{}' -w -m immediate stop >/dev/null 2>&1; rm -rf '{}'",
            self.data().display(),
            self.root.display()
        ));
        let mut child = Command::new("sh")
            .args(["-c", &script])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(io("starting the cluster's watcher (sh)"))?;
        let stdin = child.stdin.take().ok_or_else(|| ClusterError::Io {
            what: "the cluster's watcher".into(),
            source: std::io::Error::other("no stdin pipe"),
        })?;
        self.watcher = Some((child, stdin));
        Ok(())
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Some((mut child, stdin)) = self.watcher.take() {
            drop(stdin);
            let _ = child.wait();
        }
    }
}

/// `command`'s program and arguments, quoted for `sh`.
fn shell_words(command: &Command) -> String {
    std::iter::once(command.get_program())
        .chain(command.get_args())
        .map(|word| format!("'{}'", word.to_string_lossy()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The newest `/usr/lib/postgresql/VERSION/bin` that has `initdb`.
fn newest_bin_dir() -> Result<PathBuf, ClusterError> {
    let versions = std::fs::read_dir(INSTALL_ROOT).map_err(|_| ClusterError::NotInstalled)?;
    versions
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let version: u32 = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .max_by_key(|(version, _)| *version)
        .map(|(_, bin)| bin)
        .ok_or(ClusterError::NotInstalled)
}

fn running_as_root() -> Result<bool, ClusterError> {
    let me = std::fs::metadata("/proc/self").map_err(io("reading /proc/self"))?;
    Ok(me.uid() == 0)
}

fn free_port() -> Result<u16, ClusterError> {
    let listener =
        TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(io("finding a free loopback port"))?;
    let port = listener.local_addr().map_err(io("finding a free loopback port"))?.port();
    Ok(port)
}

/// Runs `command`, an error with its output unless it succeeds.
fn run(command: &mut Command, what: &str) -> Result<(), ClusterError> {
    let output: Output = command
        .stdin(Stdio::null())
        .output()
        .map_err(io(format!("running {what} ({})", command.get_program().to_string_lossy())))?;
    if output.status.success() {
        return Ok(());
    }
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    Err(ClusterError::Command {
        what: what.to_owned(),
        status: output.status.to_string(),
        output: text.trim().replace('\n', " | "),
    })
}
