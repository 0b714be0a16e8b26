//! Connections: one pooled keep-alive hyper client (HTTP/1.1, TCP_NODELAY) for `http://` and `https://` URLs,
//! TLS through rustls with the ring provider. Host names resolve through `getaddrinfo`, except names under
//! `localhost`, which are the loopback (RFC 6761, as in curl and browsers; glibc leaves `bucket.localhost`
//! unresolved), so virtual-hosted-style requests reach a local server. Servers are verified against the webpki roots plus `--ca-cert`,
//! or not at all with `--insecure` (self-signed test certificates; signatures are still checked so the
//! handshake costs what a verified one does, minus the chain walk).

use std::future::Future;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use anyhow::Context as _;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::connect::dns::{GaiResolver, Name};
use hyper_util::rt::TokioExecutor;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::{DigitallySignedStruct, SignatureScheme};
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

use crate::payload::PayloadBody;

/// The client every request goes through.
pub(crate) type HttpClient = Client<HttpsConnector<HttpConnector<Resolver>>, PayloadBody>;

/// `getaddrinfo`, but names under `localhost` (and `localhost` itself) are the loopback addresses, IPv4 first.
#[derive(Clone)]
pub(crate) struct Resolver(GaiResolver);

/// Whether `name` is `localhost` or a name under it (RFC 6761 section 6.3).
fn is_localhost(name: &str) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name);
    let tail = name.len().saturating_sub("localhost".len());
    name.get(tail..)
        .is_some_and(|t| t.eq_ignore_ascii_case("localhost"))
        && (tail == 0 || name.as_bytes()[tail - 1] == b'.')
}

impl tower_service::Service<Name> for Resolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = std::io::Error;
    // Boxed: a resolution happens per new connection, not per request.
    type Future = Pin<Box<dyn Future<Output = std::io::Result<Self::Response>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, name: Name) -> Self::Future {
        if is_localhost(name.as_str()) {
            let loopback = vec![
                SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
                SocketAddr::from((Ipv6Addr::LOCALHOST, 0)),
            ];
            return Box::pin(std::future::ready(Ok(loopback.into_iter())));
        }
        let lookup = self.0.call(name);
        Box::pin(async move { Ok(lookup.await?.collect::<Vec<_>>().into_iter()) })
    }
}

/// How HTTPS servers are trusted.
#[derive(Clone, Debug, Default)]
pub(crate) struct TlsOptions {
    /// Skip certificate verification.
    pub(crate) insecure: bool,
    /// Also trust the CA certificates in this PEM file.
    pub(crate) ca_cert: Option<PathBuf>,
}

/// A pooled client keeping up to `pool_size` idle connections per host.
pub(crate) fn http_client(tls: &TlsOptions, pool_size: usize) -> anyhow::Result<HttpClient> {
    let mut http = HttpConnector::new_with_resolver(Resolver(GaiResolver::new()));
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(Duration::from_secs(10)));
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls_config(tls)?)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    Ok(Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(pool_size.max(1))
        .pool_idle_timeout(Duration::from_secs(90))
        .build(https))
}

fn tls_config(tls: &TlsOptions) -> anyhow::Result<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?;
    let config = if tls.insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerification(
                provider.signature_verification_algorithms,
            )))
            .with_no_client_auth()
    } else {
        builder
            .with_root_certificates(root_store(tls.ca_cert.as_ref())?)
            .with_no_client_auth()
    };
    Ok(config)
}

/// The webpki roots, plus every certificate of `ca_cert`.
fn root_store(ca_cert: Option<&PathBuf>) -> anyhow::Result<rustls::RootCertStore> {
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let Some(path) = ca_cert else {
        return Ok(roots);
    };
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .with_context(|| format!("--ca-cert {}: cannot read PEM certificates", path.display()))?;
    anyhow::ensure!(
        !certs.is_empty(),
        "--ca-cert {}: no CERTIFICATE block in the file",
        path.display()
    );
    for cert in certs {
        roots.add(cert).with_context(|| {
            format!("--ca-cert {}: not a usable CA certificate", path.display())
        })?;
    }
    Ok(roots)
}

/// `--insecure`: accepts any certificate, but still checks the handshake signatures.
#[derive(Debug)]
struct NoVerification(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_under_localhost_are_the_loopback() {
        for name in [
            "localhost",
            "LocalHost",
            "b.localhost",
            "a.b.localhost.",
            "x.LOCALHOST",
        ] {
            assert!(is_localhost(name), "{name}");
        }
        for name in [
            "notlocalhost",
            "localhost.example.com",
            "example.com",
            "",
            "b-localhost",
        ] {
            assert!(!is_localhost(name), "{name}");
        }
    }

    #[test]
    fn ca_cert_errors_are_clear() {
        let dir = std::env::temp_dir().join(format!("strata-bench-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let missing = dir.join("missing.pem");
        let err = root_store(Some(&missing)).unwrap_err();
        assert!(format!("{err:#}").contains("cannot read PEM"), "{err:#}");
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let err = root_store(Some(&empty)).unwrap_err();
        assert!(format!("{err:#}").contains("no CERTIFICATE"), "{err:#}");
        assert!(root_store(None).unwrap().len() > 50);
        tls_config(&TlsOptions {
            insecure: true,
            ca_cert: None,
        })
        .unwrap();
        let _ = std::fs::remove_dir_all(&dir);
    }
}
