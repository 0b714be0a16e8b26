//! TLS termination: the rustls server configuration (TLS 1.2 and 1.3, ALPN h2 and http/1.1) and the certificate
//! resolver that picks each distribution's certificate by SNI, falling back to a self-signed certificate that
//! is generated with rcgen once and kept in the state directory.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use arc_swap::ArcSwap;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use strata_config::edge::Distribution;

/// Certificates by host name; swapped whole on reload.
#[derive(Debug)]
pub struct Certificates {
    by_name: HashMap<String, Arc<CertifiedKey>>,
    fallback: Arc<CertifiedKey>,
}

impl Certificates {
    /// Loads every distribution's PEM pair and the self-signed fallback (generated when missing).
    pub fn load(distributions: &[Distribution], state_dir: &Path) -> anyhow::Result<Self> {
        let mut by_name = HashMap::new();
        for d in distributions {
            let (Some(cert), Some(key)) = (&d.certificate, &d.private_key) else {
                continue;
            };
            let ck = Arc::new(load_pem(cert, key)?);
            for h in &d.hostnames {
                if h != "*" {
                    by_name.insert(h.to_ascii_lowercase(), ck.clone());
                }
            }
        }
        let names: Vec<String> = distributions
            .iter()
            .flat_map(|d| d.hostnames.iter())
            .filter(|h| *h != "*" && !by_name.contains_key(&h.to_ascii_lowercase()))
            .cloned()
            .collect();
        let fallback = Arc::new(self_signed(state_dir, names)?);
        Ok(Self { by_name, fallback })
    }

    fn pick(&self, sni: Option<&str>) -> Arc<CertifiedKey> {
        sni.and_then(|n| self.by_name.get(&n.to_ascii_lowercase()))
            .unwrap_or(&self.fallback)
            .clone()
    }
}

/// The SNI resolver rustls calls; reloads swap its table without touching live connections.
#[derive(Debug)]
pub struct SniResolver {
    current: ArcSwap<Certificates>,
}

impl SniResolver {
    /// A resolver over `certs`.
    pub fn new(certs: Certificates) -> Self {
        Self {
            current: ArcSwap::from_pointee(certs),
        }
    }

    /// Replaces the certificate table (SIGHUP).
    pub fn replace(&self, certs: Certificates) {
        self.current.store(Arc::new(certs));
    }
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load().pick(hello.server_name()))
    }
}

/// The server configuration for the HTTPS listener.
pub fn server_config(resolver: Arc<SniResolver>) -> anyhow::Result<rustls::ServerConfig> {
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
    .with_no_client_auth()
    .with_cert_resolver(resolver);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

fn load_pem(cert: &Path, key: &Path) -> anyhow::Result<CertifiedKey> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| anyhow::anyhow!("reading certificate {}: {e}", cert.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| anyhow::anyhow!("parsing certificate {}: {e}", cert.display()))?;
    anyhow::ensure!(!chain.is_empty(), "{} holds no certificate", cert.display());
    let key_der = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| anyhow::anyhow!("reading private key {}: {e}", key.display()))?;
    certified(chain, &key_der)
}

fn certified(
    chain: Vec<CertificateDer<'static>>,
    key: &PrivateKeyDer<'_>,
) -> anyhow::Result<CertifiedKey> {
    let signing = rustls::crypto::ring::sign::any_supported_type(key)
        .map_err(|e| anyhow::anyhow!("unsupported private key: {e}"))?;
    Ok(CertifiedKey::new(chain, signing))
}

/// The self-signed certificate in `state_dir`, made (or remade when the names changed) as needed. It covers
/// localhost, 127.0.0.1, ::1 and every configured hostname without a certificate of its own.
fn self_signed(state_dir: &Path, mut names: Vec<String>) -> anyhow::Result<CertifiedKey> {
    for n in ["localhost", "127.0.0.1", "::1"] {
        names.push(n.to_owned());
    }
    names.sort();
    names.dedup();
    let cert_path = state_dir.join("self-signed.pem");
    let key_path = state_dir.join("self-signed.key");
    let names_path = state_dir.join("self-signed.names");
    let wanted = names.join("\n");
    if std::fs::read_to_string(&names_path).is_ok_and(|n| n == wanted)
        && let Ok(ck) = load_pem(&cert_path, &key_path)
    {
        return Ok(ck);
    }
    std::fs::create_dir_all(state_dir)
        .map_err(|e| anyhow::anyhow!("creating {}: {e}", state_dir.display()))?;
    let generated = rcgen::generate_simple_self_signed(names)?;
    write_private(&key_path, generated.key_pair.serialize_pem().as_bytes())?;
    std::fs::write(&cert_path, generated.cert.pem())?;
    std::fs::write(&names_path, wanted)?;
    tracing::info!(certificate = %cert_path.display(), "generated a self-signed edge certificate");
    load_pem(&cert_path, &key_path)
}

fn write_private(path: &Path, data: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts
        .open(path)
        .map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))?;
    f.write_all(data)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn self_signed_certificate_is_made_once_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let a = Certificates::load(&[], dir.path()).unwrap();
        let first = std::fs::read(dir.path().join("self-signed.pem")).unwrap();
        let b = Certificates::load(&[], dir.path()).unwrap();
        assert_eq!(
            first,
            std::fs::read(dir.path().join("self-signed.pem")).unwrap()
        );
        assert_eq!(a.fallback.cert, b.fallback.cert);
    }
}
