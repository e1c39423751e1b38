//! `goodseed serve`: the JSON API (and, later, the web UI) over a data directory.

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, TcpListener};

use anyhow::Context as _;
use clap::Args;
use goodseed_server::{GOODSEED_APP_ORIGIN, ServerOptions, StreamLimits};

use crate::UsageError;
use crate::store::{DirProblem, open_store_waiting};

/// The port 0.4.0 serves on.
pub(crate) const DEFAULT_PORT: u16 = 8765;

/// Arguments of `goodseed serve`.
#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    #[command(flatten)]
    pub(crate) dir: crate::cli::DirArg,

    /// Port to listen on
    #[arg(long, default_value_t = DEFAULT_PORT)]
    pub(crate) port: u16,

    /// Address to listen on. Anything but a loopback address exposes your runs to the
    /// network, so it needs --token (or --unsafe-no-token)
    #[arg(long, default_value = "127.0.0.1", value_name = "ADDRESS")]
    pub(crate) host: String,

    /// Require `Authorization: Bearer TOKEN` on every API request
    #[arg(long, env = "GOODSEED_TOKEN", value_name = "TOKEN", hide_env_values = true)]
    pub(crate) token: Option<String>,

    /// Also accept browser requests from this origin (repeatable), e.g.
    /// http://my-box:3000
    #[arg(long = "allow-origin", value_name = "ORIGIN")]
    pub(crate) allow_origins: Vec<String>,

    /// Also accept this name in the Host header (repeatable), e.g. a name this
    /// machine has on your network
    #[arg(long = "allow-host", value_name = "NAME")]
    pub(crate) allow_hosts: Vec<String>,

    /// Listen on a non-loopback address without a token (anyone who can reach the
    /// port can read and trash your runs)
    #[arg(long)]
    pub(crate) unsafe_no_token: bool,

    /// The most live-update streams (`/api/events`) open at once; one more gets a 503
    #[arg(long, value_name = "N", default_value_t = StreamLimits::default().total as u64,
        value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub(crate) max_streams: u64,

    /// The most live-update streams one client address may have open; one more gets a 429
    #[arg(long, value_name = "N", default_value_t = StreamLimits::default().per_client as u64,
        value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub(crate) max_streams_per_client: u64,

    /// Print extra startup information
    #[arg(short, long)]
    pub(crate) verbose: bool,
}

impl ServeArgs {
    /// What a bare `goodseed` serves with: the defaults of `goodseed serve`.
    pub(crate) fn default_for_bare_command() -> ServeArgs {
        ServeArgs {
            dir: crate::cli::DirArg {
                dir: None,
                dir_flag: None,
                store: std::env::var("GOODSEED_STORE").ok().filter(|s| !s.is_empty()),
            },
            port: DEFAULT_PORT,
            host: "127.0.0.1".to_owned(),
            token: std::env::var("GOODSEED_TOKEN").ok().filter(|t| !t.is_empty()),
            allow_origins: Vec::new(),
            allow_hosts: Vec::new(),
            unsafe_no_token: false,
            max_streams: StreamLimits::default().total as u64,
            max_streams_per_client: StreamLimits::default().per_client as u64,
            verbose: false,
        }
    }
}

/// The shortest token accepted: 16 characters of a random hex string are 64 bits.
const MIN_TOKEN_CHARS: usize = 16;

/// Why a token cannot be used, if it cannot.
fn check_token(token: &str) -> Result<(), String> {
    // The token travels in the web UI's link and cookie: only characters both carry as is.
    let url_safe = |c: char| c.is_ascii_alphanumeric() || "._~+/=-".contains(c);
    if let Some(bad) = token.chars().find(|&c| !url_safe(c)) {
        return Err(format!(
            "--token may only hold letters, digits and ._~+/=- (it goes in a link and a \
             cookie), found {bad:?}"
        ));
    }
    if token.chars().count() < MIN_TOKEN_CHARS {
        return Err(format!(
            "--token must be at least {MIN_TOKEN_CHARS} characters long, got {} (make one \
             with `openssl rand -hex 16`)",
            token.chars().count()
        ));
    }
    Ok(())
}

/// One warning line on stderr, where the server's own output does not go.
fn warn(message: &str) {
    let _ = writeln!(std::io::stderr(), "warning: {message}");
}

/// The host part of the link printed for a browser on this machine: the address
/// listened on, a loopback address of its family for `0.0.0.0` and `::`.
fn link_host(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) if v4.is_unspecified() => Ipv4Addr::LOCALHOST.to_string(),
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) if v6.is_unspecified() => "[::1]".to_owned(),
        IpAddr::V6(v6) => format!("[{v6}]"),
    }
}

/// The names clients on the network reach this server by, which its `Host` check
/// (kept on in every mode, against DNS rebinding) accepts without `--allow-host`: the
/// address listened on, or for `0.0.0.0` and `::` this machine's name and the
/// addresses of its interfaces. Loopback needs nothing.
fn own_host_names(ip: IpAddr) -> Vec<String> {
    let bracketed = |ip: IpAddr| match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("[{v6}]"),
    };
    if ip.is_loopback() {
        return Vec::new();
    }
    if !ip.is_unspecified() {
        return vec![bracketed(ip)];
    }
    let mut names = vec![goodseed_store::host_name()];
    // Interfaces that cannot be listed leave the name and --allow-host.
    for interface in if_addrs::get_if_addrs().unwrap_or_default() {
        let addr = interface.ip();
        // `::` also takes IPv4 (dual stack); `0.0.0.0` only IPv4.
        if !addr.is_loopback() && (ip.is_ipv6() || addr.is_ipv4()) {
            names.push(bracketed(addr));
        }
    }
    names.dedup();
    names
}

/// Runs the server until Ctrl-C.
pub(crate) fn run(args: ServeArgs, out: &mut impl Write) -> anyhow::Result<()> {
    let ip: IpAddr = if args.host.eq_ignore_ascii_case("localhost") {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    } else {
        args.host.parse().map_err(|_| {
            UsageError::new(std::io::Error::other(format!(
                "--host {:?} is not an IP address (use 127.0.0.1, ::1 or 0.0.0.0)",
                args.host
            )))
        })?
    };
    if !ip.is_loopback() && args.token.is_none() && !args.unsafe_no_token {
        return Err(UsageError::new(std::io::Error::other(format!(
            "listening on {ip} exposes your runs to the network: pass --token TOKEN (or set \
             GOODSEED_TOKEN), or --unsafe-no-token to do it anyway"
        )))
        .into());
    }
    if let Some(token) = args.token.as_deref() {
        check_token(token).map_err(|e| UsageError::new(std::io::Error::other(e)))?;
    }
    if !ip.is_loopback() && args.token.is_none() {
        // Asked for, but never silently: anyone on the network can now read and trash.
        warn(&format!(
            "listening on {ip} without a token (--unsafe-no-token): anyone who can reach \
             port {} can read, trash and stop your runs",
            args.port
        ));
    }
    let opened = open_store_waiting(args.dir.location()?, |line| warn(&line))?;
    // Served all the same (runs appear once a trainer writes there), but never silently.
    match opened.problem() {
        Some(DirProblem::Missing) => warn(&format!(
            "the projects directory {} does not exist (yet): serving no runs until a \
             trainer writes there",
            opened.dir.display()
        )),
        Some(DirProblem::NotADirectory) => warn(&format!(
            "the projects directory {} is not a directory: serving no runs",
            opened.dir.display()
        )),
        None => {}
    }
    let opened = opened.watched(|line| warn(&line));
    let listener = TcpListener::bind((ip, args.port))
        .with_context(|| format!("cannot listen on {ip} port {}", args.port))?;
    let port = listener.local_addr().context("reading the listening address")?.port();

    let mut allowed_origins = vec![GOODSEED_APP_ORIGIN.to_owned()];
    allowed_origins.extend(args.allow_origins);
    let mut allowed_hosts = args.allow_hosts;
    allowed_hosts.extend(own_host_names(ip));
    let options = ServerOptions {
        port,
        allowed_origins,
        allowed_hosts,
        token: args.token,
        tokens: Some(opened.tokens()),
        requests: Some(opened.requests()),
        remote_idle: goodseed_server::DEFAULT_REMOTE_IDLE,
        workers: None,
        handle_signals: true,
        stream_limits: StreamLimits {
            total: usize::try_from(args.max_streams).unwrap_or(usize::MAX),
            per_client: usize::try_from(args.max_streams_per_client).unwrap_or(usize::MAX),
        },
    };
    let shown = link_host(ip);
    writeln!(out, "Goodseed server running at http://{shown}:{port}")?;
    if args.verbose && opened.is_database() {
        writeln!(out, "Store: {}", opened.dir.display())?;
    } else if args.verbose {
        writeln!(out, "Data directory: {}", opened.dir.display())?;
        writeln!(out, "Accepted Host names: loopback names, {}", options.allowed_hosts.join(", "))?;
    }
    writeln!(out, "View your runs at {GOODSEED_APP_ORIGIN}/local?port={port}")?;
    match &options.token {
        // The page keeps the token in a cookie and takes it out of the address bar.
        Some(token) => {
            writeln!(out, "Or in the built-in web UI: http://{shown}:{port}/?token={token}")?
        }
        None => writeln!(out, "Or in the built-in web UI: http://{shown}:{port}/")?,
    }
    writeln!(out, "Press Ctrl-C to stop.")?;
    out.flush()?;
    goodseed_server::run(listener, opened.store, options).context("serving")?;
    writeln!(out, "\nServer stopped.")?;
    Ok(())
}
