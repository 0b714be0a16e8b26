//! The `strata` binary: command-line wiring only. Parses flags, builds the configuration (flag > env > file >
//! default), resolves the root credentials, and starts the components from the library crates.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

mod admin;

/// mimalloc rather than glibc malloc: the data path and the metadata replicas' threads allocate and free on
/// many threads at once, where glibc's arenas spent about 12% of a 4 KiB PUT's server CPU (`_int_malloc`,
/// `unlink_chunk`, `malloc_consolidate`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    /// Run a CDN edge node in front of an S3 endpoint or any HTTP origin.
    Edge(EdgeArgs),
    /// Measure throughput and latency of any S3 endpoint.
    Bench(Box<strata_bench::BenchArgs>),
    /// Administer a running server as root: users and their policies.
    Admin(admin::AdminArgs),
}

#[derive(clap::Args, Debug)]
struct EdgeArgs {
    /// Edge configuration file (see config/edge.toml). Reloaded on SIGHUP.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Quick start without a file: one catch-all distribution with this HTTP origin (e.g. http://127.0.0.1:9001).
    #[arg(long, conflicts_with = "config")]
    origin: Option<String>,
    /// Plain HTTP listen address [default: 127.0.0.1:8080]
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// HTTPS listen address [default: 127.0.0.1:8443]
    #[arg(long)]
    tls_listen: Option<SocketAddr>,
    /// Admin listen address (health, metrics, invalidations) [default: 127.0.0.1:8081]
    #[arg(long)]
    admin_listen: Option<SocketAddr>,
    /// State directory (self-signed certificate, admin token) [default: ./edge-state]
    #[arg(long)]
    state_dir: Option<PathBuf>,
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
    /// Edge admin listen address: health, metrics, invalidations [default: 127.0.0.1:8081]
    #[arg(long)]
    edge_admin_addr: Option<SocketAddr>,
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
        Command::Edge(args) => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            rt.block_on(edge(args))
        }
        Command::Bench(args) => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            rt.block_on(strata_bench::run(*args))
        }
        Command::Admin(args) => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(admin::run(args))
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
    if let Some(a) = args.edge_admin_addr {
        cfg.edge.admin_listen = a;
    }
    cfg.edge.listen = cfg.server.edge_addr;
    cfg.edge.tls_listen = cfg.server.edge_tls_addr;
    if !args.disks.is_empty() {
        cfg.storage.disks = args.disks.clone();
    }
    cfg.validate()?;
    Ok(cfg)
}

/// Root credentials that exist already: from the environment, else from the data directory.
fn root_credentials_existing(data_dir: &Path) -> Result<(String, String, &'static str)> {
    root_credentials_found(data_dir)?.with_context(|| {
        format!(
            "no root credentials: set STRATA_ACCESS_KEY and STRATA_SECRET_KEY, or pass --data DIR with the \
             credentials.toml of the server (looked in {})",
            data_dir.display()
        )
    })
}

fn root_credentials_found(data_dir: &Path) -> Result<Option<(String, String, &'static str)>> {
    if let (Ok(a), Ok(s)) = (
        std::env::var("STRATA_ACCESS_KEY"),
        std::env::var("STRATA_SECRET_KEY"),
    ) {
        anyhow::ensure!(
            !a.is_empty() && !s.is_empty(),
            "STRATA_ACCESS_KEY and STRATA_SECRET_KEY must not be empty"
        );
        return Ok(Some((a, s, "environment")));
    }
    let path = data_dir.join("credentials.toml");
    if let Ok(text) = std::fs::read_to_string(&path) {
        let table: toml_lite::Creds =
            toml_lite::parse(&text).with_context(|| format!("reading {}", path.display()))?;
        return Ok(Some((table.access_key, table.secret_key, "data directory")));
    }
    Ok(None)
}

/// Root credentials: from the environment, else generated once and kept in the data directory.
fn root_credentials(data_dir: &Path) -> Result<(String, String, &'static str)> {
    if let Some(found) = root_credentials_found(data_dir)? {
        return Ok(found);
    }
    let path = data_dir.join("credentials.toml");
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

/// Resolves when `watch` turns true (the shutdown signal fanned out to every listener).
async fn stopped(mut watch: tokio::sync::watch::Receiver<bool>) {
    let _ = watch.wait_for(|s| *s).await;
}

/// Reloads the edge's configuration from `file` on every SIGHUP.
fn reload_on_sighup(
    reloader: strata_edge::Reloader,
    load: impl Fn() -> Result<strata_config::EdgeConfig> + Send + 'static,
) {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut hup) = signal(SignalKind::hangup()) else {
        return;
    };
    tokio::spawn(async move {
        while hup.recv().await.is_some() {
            match load().and_then(|cfg| reloader.reload(&cfg)) {
                Ok(()) => {}
                Err(e) => {
                    tracing::error!(error = %e, "reload failed; keeping the running configuration")
                }
            }
        }
    });
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
    let website_listener = tokio::net::TcpListener::bind(cfg.server.website_addr)
        .await
        .with_context(|| {
            format!(
                "binding the website endpoint on {}",
                cfg.server.website_addr
            )
        })?;
    let website_addr = website_listener.local_addr()?;
    let users = strata_gateway::UserStore::load(&engine, &access, &secret)
        .await
        .map_err(|e| anyhow::anyhow!("loading users: {e}"))?;
    let ctx = Arc::new(strata_gateway::Ctx {
        engine,
        creds: Arc::new(users),
        region: cfg.server.region.clone(),
        vhost_domains: vec!["localhost".to_owned()],
        website_domains: cfg.server.website_domains.clone(),
        client_timeout: Duration::from_secs(cfg.server.client_timeout_secs),
        access: Default::default(),
    });
    tracing::info!(
        s3 = %addr,
        disks = cfg.disk_paths().len(),
        geometry = %format!("{}+{}", cfg.storage.data_shards, cfg.storage.parity_shards),
        "strata serving"
    );
    let edge_cfg = serve_edge_config(&cfg, addr, website_addr);
    let edge =
        strata_edge::EdgeServer::bind(&edge_cfg, &edge_state_dir(&cfg), log_sink(&edge_cfg)?)
            .await
            .context("starting the edge")?;
    let (edge_http, edge_https, edge_admin) = edge.addrs();
    if let Some(path) = args.config.clone() {
        reload_on_sighup(edge.reloader(), move || {
            let mut c = Config::from_file(&path)?;
            c.edge.listen = edge_cfg.listen;
            c.edge.tls_listen = edge_cfg.tls_listen;
            Ok(serve_edge_config(&c, addr, website_addr))
        });
    }
    println!("S3 API:      http://{addr}");
    println!("Website:     http://{website_addr}");
    println!("Edge:        http://{edge_http}  https://{edge_https}  (admin http://{edge_admin})");
    println!("Edge admin token: {}", edge.admin_token());
    println!("Region:      {}", cfg.server.region);
    println!("Credentials ({source}):");
    println!("  AccessKey: {access}");
    println!("  SecretKey: {secret}");
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop_tx.send(true);
    });
    let grace = Duration::from_secs(cfg.server.shutdown_grace_secs);
    tokio::join!(
        strata_gateway::serve(listener, ctx.clone(), stopped(stop_rx.clone()), grace),
        strata_gateway::server::serve_website(
            website_listener,
            ctx,
            stopped(stop_rx.clone()),
            grace
        ),
        edge.run(stopped(stop_rx), grace),
    );
    Ok(())
}

/// The edge `strata serve` runs: the configured distributions, or one catch-all distribution "local" whose
/// browser reads (anonymous GET, HEAD, OPTIONS) go to the local website endpoint with the viewer's Host, and
/// whose API requests (signed ones and writes) pass through to the local S3 API.
fn serve_edge_config(
    cfg: &Config,
    s3: SocketAddr,
    website: SocketAddr,
) -> strata_config::EdgeConfig {
    use strata_config::edge::{Distribution, Origin};
    let mut edge = cfg.edge.clone();
    if edge.distributions.is_empty() {
        edge.distributions.push(Distribution {
            id: "local".into(),
            hostnames: vec!["*".into()],
            origin: Origin::Http {
                url: format!("http://{website}"),
                forward_host: true,
            },
            api_origin: Some(Origin::S3 {
                endpoint: format!("http://{s3}"),
                bucket: None,
                region: cfg.server.region.clone(),
                access_key: None,
                secret_key: None,
            }),
            viewer_protocol_policy: Default::default(),
            certificate: None,
            private_key: None,
            geo: Default::default(),
            behaviors: Vec::new(),
        });
    }
    edge
}

/// Where rotated access logs are uploaded, when configured.
fn log_sink(
    cfg: &strata_config::EdgeConfig,
) -> Result<Option<Arc<dyn strata_edge::access_log::LogSink>>> {
    Ok(match &cfg.log.upload {
        Some(u) => Some(Arc::new(strata_edge::log_upload::S3LogSink::new(
            u,
            Duration::from_secs(cfg.origin_timeout_secs),
        )?)),
        None => None,
    })
}

fn edge_state_dir(cfg: &Config) -> PathBuf {
    cfg.edge
        .state_dir
        .clone()
        .unwrap_or_else(|| cfg.server.data_dir.join("edge"))
}

async fn edge(args: EdgeArgs) -> Result<()> {
    let load = {
        let args_config = args.config.clone();
        let origin = args.origin.clone();
        let (listen, tls_listen, admin_listen) = (args.listen, args.tls_listen, args.admin_listen);
        move || -> Result<strata_config::EdgeConfig> {
            let mut cfg = match &args_config {
                Some(path) => strata_config::EdgeConfig::from_file(path)?,
                None => strata_config::EdgeConfig::default(),
            };
            if let Some(url) = &origin {
                cfg.distributions = vec![strata_config::edge::Distribution {
                    id: "default".into(),
                    hostnames: vec!["*".into()],
                    origin: strata_config::edge::Origin::Http {
                        url: url.clone(),
                        forward_host: true,
                    },
                    api_origin: None,
                    viewer_protocol_policy: Default::default(),
                    certificate: None,
                    private_key: None,
                    geo: Default::default(),
                    behaviors: Vec::new(),
                }];
            }
            if let Some(a) = listen {
                cfg.listen = a;
            }
            if let Some(a) = tls_listen {
                cfg.tls_listen = a;
            }
            if let Some(a) = admin_listen {
                cfg.admin_listen = a;
            }
            cfg.validate()?;
            Ok(cfg)
        }
    };
    let cfg = load()?;
    anyhow::ensure!(
        !cfg.distributions.is_empty(),
        "no distributions: pass --config FILE (see config/edge.toml) or --origin URL"
    );
    let state_dir = args
        .state_dir
        .clone()
        .or_else(|| cfg.state_dir.clone())
        .unwrap_or_else(|| PathBuf::from("./edge-state"));
    let server = strata_edge::EdgeServer::bind(&cfg, &state_dir, log_sink(&cfg)?)
        .await
        .context("starting the edge")?;
    let (http, https, admin) = server.addrs();
    if args.config.is_some() {
        reload_on_sighup(server.reloader(), load);
    }
    println!("Edge:        http://{http}  https://{https}  (admin http://{admin})");
    println!("Admin token: {}", server.admin_token());
    server.run(shutdown_signal(), Duration::from_secs(30)).await;
    Ok(())
}
