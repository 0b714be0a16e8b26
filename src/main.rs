//! The `strata` binary: command-line wiring only. Parses flags, builds the configuration (flag > env > file >
//! default), resolves the root credentials, and starts the components from the library crates.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use strata_config::Config;

#[derive(Parser, Debug)]
#[command(
    name = "strata",
    version,
    about = "S3-compatible object store with a CDN edge cache"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the S3 API and storage engine on this machine.
    Serve(ServeArgs),
    /// Measure throughput and latency of any S3 endpoint.
    Bench(strata_bench::BenchArgs),
}

#[derive(clap::Args, Debug)]
struct ServeArgs {
    /// TOML configuration file (see config/strata.toml).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Data directory: credentials and, without --disk, the default disks [default: ./data]
    #[arg(long)]
    data: Option<PathBuf>,
    /// S3 API listen address [default: 127.0.0.1:9000]
    #[arg(long)]
    s3_addr: Option<SocketAddr>,
    /// Edge cache HTTP listen address [default: 127.0.0.1:8080]
    #[arg(long)]
    edge_addr: Option<SocketAddr>,
    /// Edge cache TLS listen address [default: 127.0.0.1:8443]
    #[arg(long)]
    edge_tls_addr: Option<SocketAddr>,
    /// Static website listen address [default: 127.0.0.1:9001]
    #[arg(long)]
    website_addr: Option<SocketAddr>,
    /// A disk directory; repeat once per shard (data + parity). Default: 6 directories under the data dir.
    #[arg(long = "disk")]
    disks: Vec<PathBuf>,
}

fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            rt.block_on(serve(args))
        }
        Command::Bench(args) => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            rt.block_on(strata_bench::run(args))
        }
    }
}

/// Applies file, environment and flags to the defaults, in increasing precedence.
fn build_config(args: &ServeArgs) -> Result<Config> {
    let mut cfg = match &args.config {
        Some(path) => Config::from_file(path)?,
        None => Config::default(),
    };
    if let Ok(region) = std::env::var("STRATA_REGION") {
        cfg.server.region = region;
    }
    if let Some(d) = &args.data {
        cfg.server.data_dir = d.clone();
    }
    if let Some(a) = args.s3_addr {
        cfg.server.s3_addr = a;
    }
    if let Some(a) = args.edge_addr {
        cfg.server.edge_addr = a;
    }
    if let Some(a) = args.edge_tls_addr {
        cfg.server.edge_tls_addr = a;
    }
    if let Some(a) = args.website_addr {
        cfg.server.website_addr = a;
    }
    if !args.disks.is_empty() {
        cfg.storage.disks = args.disks.clone();
    }
    cfg.validate()?;
    Ok(cfg)
}

/// Root credentials: from the environment, else generated once and kept in the data directory.
fn root_credentials(data_dir: &Path) -> Result<(String, String, &'static str)> {
    if let (Ok(a), Ok(s)) = (
        std::env::var("STRATA_ACCESS_KEY"),
        std::env::var("STRATA_SECRET_KEY"),
    ) {
        anyhow::ensure!(
            !a.is_empty() && !s.is_empty(),
            "STRATA_ACCESS_KEY and STRATA_SECRET_KEY must not be empty"
        );
        return Ok((a, s, "environment"));
    }
    let path = data_dir.join("credentials.toml");
    if let Ok(text) = std::fs::read_to_string(&path) {
        let table: toml_lite::Creds =
            toml_lite::parse(&text).with_context(|| format!("reading {}", path.display()))?;
        return Ok((table.access_key, table.secret_key, "data directory"));
    }
    use rand::Rng;
    let mut rng = rand::rng();
    const UPPER: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    const SECRET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let access: String = (0..20)
        .map(|_| UPPER[rng.random_range(0..UPPER.len())] as char)
        .collect();
    let secret: String = (0..40)
        .map(|_| SECRET[rng.random_range(0..SECRET.len())] as char)
        .collect();
    std::fs::create_dir_all(data_dir)?;
    let text = format!(
        "# Root credentials generated at first start.\naccess_key = \"{access}\"\nsecret_key = \"{secret}\"\n"
    );
    write_private(&path, &text)?;
    Ok((access, secret, "generated"))
}

fn write_private(path: &Path, text: &str) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

/// The two keys of credentials.toml, parsed without pulling a TOML crate into the binary.
mod toml_lite {
    pub(crate) struct Creds {
        pub(crate) access_key: String,
        pub(crate) secret_key: String,
    }

    pub(crate) fn parse(text: &str) -> anyhow::Result<Creds> {
        let get = |name: &str| -> anyhow::Result<String> {
            text.lines()
                .filter_map(|l| l.split_once('='))
                .find(|(k, _)| k.trim() == name)
                .map(|(_, v)| v.trim().trim_matches('"').to_owned())
                .ok_or_else(|| anyhow::anyhow!("missing {name}"))
        };
        Ok(Creds {
            access_key: get("access_key")?,
            secret_key: get("secret_key")?,
        })
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = term.recv() => {},
    }
    tracing::info!("shutdown requested; finishing in-flight requests");
}

async fn serve(args: ServeArgs) -> Result<()> {
    let cfg = build_config(&args)?;
    let (access, secret, source) = root_credentials(&cfg.server.data_dir)?;
    let settings = strata_storage::Settings::from_config(&cfg)?;
    let engine = strata_storage::Engine::open(settings)
        .await
        .context("opening storage")?;
    let listener = tokio::net::TcpListener::bind(cfg.server.s3_addr)
        .await
        .with_context(|| format!("binding S3 API on {}", cfg.server.s3_addr))?;
    let addr = listener.local_addr()?;
    let ctx = Arc::new(strata_gateway::Ctx {
        engine,
        creds: Arc::new(strata_gateway::StaticCredentials::with_root(
            &access, &secret,
        )),
        region: cfg.server.region.clone(),
        vhost_domains: vec!["localhost".to_owned()],
        client_timeout: Duration::from_secs(cfg.server.client_timeout_secs),
    });
    tracing::info!(
        s3 = %addr,
        disks = cfg.disk_paths().len(),
        geometry = %format!("{}+{}", cfg.storage.data_shards, cfg.storage.parity_shards),
        "strata serving"
    );
    println!("S3 API:      http://{addr}");
    println!("Region:      {}", cfg.server.region);
    println!("Credentials ({source}):");
    println!("  AccessKey: {access}");
    println!("  SecretKey: {secret}");
    strata_gateway::serve(
        listener,
        ctx,
        shutdown_signal(),
        Duration::from_secs(cfg.server.shutdown_grace_secs),
    )
    .await;
    Ok(())
}
