//! rustls configurations from the `tls-*` directives, with Redis's log lines for what cannot
//! be loaded. What OpenSSL offers and rustls does not (TLS 1.0/1.1, CBC and RSA-key-exchange
//! ciphers, finite-field DH) is refused or reported here, never silently pretended.

use super::verify::{ChainOnly, ClientChain, Legacy};
use crate::config::Config;
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::sign::{CertifiedKey, SingleCertAndKey};
use rustls::{ClientConfig, RootCertStore, ServerConfig, SupportedCipherSuite, SupportedProtocolVersion};
use std::sync::Arc;

/// `tls-auth-clients`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthClients {
    /// No certificate asked for.
    No,
    /// A certificate signed by a configured CA is required.
    Yes,
    /// A certificate is asked for; if one is sent it must verify.
    Optional,
}

/// The built configurations.
pub struct Built {
    /// For accepted connections (clients, replicas, cluster peers).
    pub server: Arc<ServerConfig>,
    /// For connections slotcore opens (to its master, to cluster peers); None without a CA
    /// (nothing could be verified, and no outgoing TLS is configured then).
    pub client: Option<Arc<ClientConfig>>,
}

fn text<'a>(cfg: &'a Config, name: &str) -> Option<&'a str> {
    cfg.get(name).filter(|v| !v.is_empty())
}

fn yes(cfg: &Config, name: &str) -> bool {
    cfg.get(name) == Some("yes")
}

/// `tls-auth-clients` of a config.
pub fn auth_clients(cfg: &Config) -> AuthClients {
    match cfg.get("tls-auth-clients") {
        Some("no") => AuthClients::No,
        Some("optional") => AuthClients::Optional,
        _ => AuthClients::Yes,
    }
}

/// `tls-protocols` as Redis's `parseProtocolsConfig` reads it (empty: TLS 1.2 and 1.3),
/// keeping the versions rustls speaks.
fn protocols(value: Option<&str>) -> Result<Vec<&'static SupportedProtocolVersion>, String> {
    let Some(value) = value else { return Ok(vec![&rustls::version::TLS13, &rustls::version::TLS12]) };
    let (mut v12, mut v13, mut old) = (false, false, Vec::new());
    for tok in value.split_whitespace() {
        match tok.to_ascii_lowercase().as_str() {
            "tlsv1" | "tlsv1.1" => old.push(tok.to_string()),
            "tlsv1.2" => v12 = true,
            "tlsv1.3" => v13 = true,
            _ => return Err(
                "Invalid tls-protocols specified. Use a combination of 'TLSv1', 'TLSv1.1', 'TLSv1.2' and 'TLSv1.3'."
                    .into(),
            ),
        }
    }
    if !v12 && !v13 {
        return Err(if old.is_empty() {
            "Invalid tls-protocols configuration string".into()
        } else {
            format!(
                "tls-protocols: {} not supported by slotcore's TLS (rustls speaks TLSv1.2 and TLSv1.3 only)",
                old.join(" ")
            )
        });
    }
    if !old.is_empty() {
        tracing::warn!("tls-protocols: {} not supported by slotcore's TLS (rustls), left out", old.join(" "));
    }
    let mut out: Vec<&'static SupportedProtocolVersion> = Vec::new();
    if v13 {
        out.push(&rustls::version::TLS13);
    }
    if v12 {
        out.push(&rustls::version::TLS12);
    }
    Ok(out)
}

/// The IANA name of a suite (`TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256`, `TLS13_AES_128_GCM_SHA256`).
fn iana(s: &SupportedCipherSuite) -> String {
    format!("{:?}", s.suite())
}

/// OpenSSL's name of a TLS 1.2 suite rustls offers (`ECDHE-RSA-AES128-GCM-SHA256`).
fn openssl_name(s: &SupportedCipherSuite) -> String {
    let n = iana(s);
    let n = n.trim_start_matches("TLS_").replace("_WITH_", "_");
    let n = n.replace("AES_128_GCM_SHA256", "AES128-GCM-SHA256").replace("AES_256_GCM_SHA384", "AES256-GCM-SHA384");
    n.replace("CHACHA20_POLY1305_SHA256", "CHACHA20-POLY1305").replace('_', "-")
}

/// Whether a TLS 1.2 suite matches one OpenSSL cipher-string word (a name, or an alias such
/// as `HIGH`, `ECDHE`, `AESGCM`, `aRSA`, possibly joined with `+`).
fn cipher_word_matches(word: &str, s: &SupportedCipherSuite) -> bool {
    let name = openssl_name(s);
    if word.eq_ignore_ascii_case(&name) {
        return true;
    }
    word.split('+').all(|part| match part {
        "DEFAULT" | "ALL" | "HIGH" | "ECDHE" | "EECDH" | "kEECDH" | "kECDHE" | "TLSv1.2" | "SSLv3" => true,
        "AESGCM" | "AES" => name.contains("AES"),
        "AES128" => name.contains("AES128"),
        "AES256" => name.contains("AES256"),
        "CHACHA20" => name.contains("CHACHA20"),
        "aRSA" | "RSA" => name.contains("-RSA-"),
        "aECDSA" | "ECDSA" => name.contains("ECDSA"),
        "SHA256" => name.ends_with("SHA256") || name.contains("CHACHA20"),
        "SHA384" => name.ends_with("SHA384"),
        _ => false,
    })
}

/// The TLS 1.2 suites a `tls-ciphers` list selects (OpenSSL syntax; exclusions such as
/// `!aNULL` name nothing rustls offers and are skipped).
fn tls12_suites(value: &str, all: &[SupportedCipherSuite]) -> Vec<SupportedCipherSuite> {
    let words: Vec<&str> =
        value.split([':', ',', ' ']).filter(|w| !w.is_empty() && !w.starts_with(['!', '-', '+', '@'])).collect();
    all.iter().filter(|s| words.iter().any(|w| cipher_word_matches(w, s))).copied().collect()
}

/// The TLS 1.3 suites a `tls-ciphersuites` list names (`TLS_AES_128_GCM_SHA256:...`).
fn tls13_suites(value: &str, all: &[SupportedCipherSuite]) -> Vec<SupportedCipherSuite> {
    let names: Vec<String> = value.split(':').map(|n| n.trim().replacen("TLS_", "TLS13_", 1)).collect();
    all.iter().filter(|s| names.iter().any(|n| n.eq_ignore_ascii_case(&iana(s)))).copied().collect()
}

/// The crypto provider with the suites `tls-ciphers` / `tls-ciphersuites` allow.
fn provider(cfg: &Config) -> Result<Arc<CryptoProvider>, String> {
    let base = rustls::crypto::ring::default_provider();
    let (v13, v12): (Vec<SupportedCipherSuite>, Vec<SupportedCipherSuite>) =
        base.cipher_suites.iter().partition(|s| s.version().version == rustls::ProtocolVersion::TLSv1_3);
    let v12 = match text(cfg, "tls-ciphers") {
        None => v12,
        Some(list) => match tls12_suites(list, &v12) {
            s if s.is_empty() => return Err(format!("Failed to configure ciphers: {list}")),
            s => s,
        },
    };
    let v13 = match text(cfg, "tls-ciphersuites") {
        None => v13,
        Some(list) => match tls13_suites(list, &v13) {
            s if s.is_empty() => return Err(format!("Failed to configure ciphersuites: {list}")),
            s => s,
        },
    };
    Ok(Arc::new(CryptoProvider { cipher_suites: [v13, v12].concat(), ..base }))
}

/// The certificate chain of a PEM file.
fn load_certs(path: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .map_err(|e| pem_error(path, e))?
        .collect::<Result<_, _>>()
        .map_err(|e| pem_error(path, e))?;
    if certs.is_empty() {
        return Err(format!("{path}: no certificate found"));
    }
    Ok(certs)
}

fn pem_error(path: &str, e: rustls::pki_types::pem::Error) -> String {
    match e {
        rustls::pki_types::pem::Error::Io(io) => format!("{path}: {io}"),
        other => format!("{path}: {other:?}"),
    }
}

/// The private key of a PEM file; an encrypted one is decrypted with `pass`.
fn load_key(path: &str, pass: Option<&str>) -> Result<PrivateKeyDer<'static>, String> {
    let pem = std::fs::read(path).map_err(|e| format!("{path}: {e}"))?;
    if pem.windows(9).any(|w| w == b"ENCRYPTED") {
        return super::keypass::decrypt(&pem, pass).map_err(|e| format!("{path}: {e}"));
    }
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| pem_error(path, e))
}

/// The CA certificates of `tls-ca-cert-file` and every certificate file in `tls-ca-cert-dir`.
fn load_roots(file: Option<&str>, dir: Option<&str>) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    if let Some(f) = file {
        for c in load_certs(f)? {
            roots.add(c).map_err(|e| format!("{f}: {e}"))?;
        }
    }
    if let Some(d) = dir {
        let entries = std::fs::read_dir(d).map_err(|e| format!("{d}: {e}"))?;
        for entry in entries.flatten() {
            // OpenSSL's hashed directory holds links named <hash>.N; any PEM certificate in
            // the directory is taken here.
            let p = entry.path();
            let Some(ps) = p.to_str() else { continue };
            if let Ok(certs) = load_certs(ps) {
                for c in certs {
                    let _ = roots.add(c);
                }
            }
        }
    }
    if roots.is_empty() {
        return Err("no CA certificate found".into());
    }
    Ok(roots)
}

/// Builds both configurations; the error is the line Redis logs for the failure.
pub fn build(cfg: &Config) -> Result<Built, String> {
    let cert_file = text(cfg, "tls-cert-file").ok_or("No tls-cert-file configured!")?;
    let key_file = text(cfg, "tls-key-file").ok_or("No tls-key-file configured!")?;
    let (ca_file, ca_dir) = (text(cfg, "tls-ca-cert-file"), text(cfg, "tls-ca-cert-dir"));
    let auth = auth_clients(cfg);
    if (auth != AuthClients::No || yes(cfg, "tls-cluster") || yes(cfg, "tls-replication"))
        && ca_file.is_none()
        && ca_dir.is_none()
    {
        return Err("Either tls-ca-cert-file or tls-ca-cert-dir must be specified when tls-cluster, tls-replication or tls-auth-clients are enabled!".into());
    }
    let versions = protocols(text(cfg, "tls-protocols"))?;
    let provider = provider(cfg)?;
    if let Some(dh) = text(cfg, "tls-dh-params-file") {
        std::fs::metadata(dh).map_err(|e| format!("Failed to load {dh}: {e}"))?;
        tracing::info!("tls-dh-params-file {}: not used, rustls negotiates ECDHE key exchanges only", dh);
    }
    let certs = load_certs(cert_file).map_err(|e| format!("Failed to load certificate: {e}"))?;
    let key =
        load_key(key_file, text(cfg, "tls-key-file-pass")).map_err(|e| format!("Failed to load private key: {e}"))?;
    let roots = match (ca_file, ca_dir) {
        (None, None) => None,
        (f, d) => Some(Arc::new(
            load_roots(f, d).map_err(|e| format!("Failed to configure CA certificate(s) file/directory: {e}"))?,
        )),
    };
    let bad_versions = |e: rustls::Error| format!("Failed to configure TLS protocols and ciphers: {e}");
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions)
        .map_err(bad_versions)?;
    let legacy =
        |roots: &Arc<RootCertStore>| Legacy { roots: roots.clone(), algs: provider.signature_verification_algorithms };
    let builder = match (&roots, auth) {
        (Some(r), AuthClients::Yes | AuthClients::Optional) => {
            let mut v = WebPkiClientVerifier::builder_with_provider(r.clone(), provider.clone());
            if auth == AuthClients::Optional {
                v = v.allow_unauthenticated();
            }
            let webpki = v.build().map_err(|e| format!("Failed to configure CA certificate(s) file/directory: {e}"))?;
            builder.with_client_cert_verifier(Arc::new(ClientChain { webpki, legacy: legacy(r) }))
        }
        _ => builder.with_no_client_auth(),
    };
    let own =
        certified_key(certs, key, &provider).map_err(|e| format!("Failed to load private key: {key_file}: {e}"))?;
    let mut server = builder.with_cert_resolver(Arc::new(SingleCertAndKey::from(own)));
    server.ignore_client_order = yes(cfg, "tls-prefer-server-ciphers");
    if cfg.get("tls-session-caching") == Some("no") {
        server.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
        server.send_tls13_tickets = 0;
    } else {
        let size = cfg.get("tls-session-cache-size").and_then(|v| v.parse::<usize>().ok()).unwrap_or(20 * 1024);
        server.session_storage = rustls::server::ServerSessionMemoryCache::new(size.max(1));
    }
    let client = match roots {
        None => None,
        Some(r) => {
            let (cc, ck, cp) = match text(cfg, "tls-client-cert-file") {
                Some(c) => {
                    (c, text(cfg, "tls-client-key-file").unwrap_or(key_file), text(cfg, "tls-client-key-file-pass"))
                }
                None => (cert_file, key_file, text(cfg, "tls-key-file-pass")),
            };
            let certs = load_certs(cc).map_err(|e| format!("Failed to load certificate: {e}"))?;
            let key = load_key(ck, cp).map_err(|e| format!("Failed to load private key: {e}"))?;
            let legacy = legacy(&r);
            let webpki = WebPkiServerVerifier::builder_with_provider(r, provider.clone())
                .build()
                .map_err(|e| format!("Failed to configure CA certificate(s) file/directory: {e}"))?;
            let own =
                certified_key(certs, key, &provider).map_err(|e| format!("Failed to load private key: {ck}: {e}"))?;
            let c = ClientConfig::builder_with_provider(provider)
                .with_protocol_versions(&versions)
                .map_err(bad_versions)?
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(ChainOnly { webpki, legacy }))
                .with_client_cert_resolver(Arc::new(SingleCertAndKey::from(own)));
            Some(Arc::new(c))
        }
    };
    Ok(Built { server: Arc::new(server), client })
}

/// The node's certificate chain with its key. A key that does not match the certificate is
/// refused, as OpenSSL's `SSL_CTX_check_private_key` does for Redis; a certificate webpki
/// cannot parse for that check (X.509 v1, such as the `redis.crt` of Redis's own
/// `gen-test-certs.sh`) is still served, as OpenSSL serves it.
fn certified_key(
    certs: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    provider: &CryptoProvider,
) -> Result<CertifiedKey, rustls::Error> {
    let ck = CertifiedKey::new(certs, provider.key_provider.load_private_key(key)?);
    match ck.keys_match() {
        Err(e @ rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => Err(e),
        Err(rustls::Error::NoCertificatesPresented) => Err(rustls::Error::NoCertificatesPresented),
        _ => Ok(ck),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocols_as_redis_reads_them() {
        let v = |s: Option<&str>| protocols(s).unwrap().iter().map(|p| p.version).collect::<Vec<_>>();
        use rustls::ProtocolVersion::{TLSv1_2, TLSv1_3};
        assert_eq!(v(None), vec![TLSv1_3, TLSv1_2]);
        assert_eq!(v(Some("TLSv1.2")), vec![TLSv1_2]);
        assert_eq!(v(Some("tlsv1.3 TLSv1.2")), vec![TLSv1_3, TLSv1_2]);
        assert_eq!(v(Some("TLSv1.1 TLSv1.2")), vec![TLSv1_2]);
        assert!(protocols(Some("TLSv1 TLSv1.1")).unwrap_err().contains("not supported"));
        assert!(protocols(Some("SSLv3")).unwrap_err().starts_with("Invalid tls-protocols specified."));
    }

    #[test]
    fn cipher_lists_in_openssl_syntax() {
        let all = rustls::crypto::ring::default_provider().cipher_suites;
        let is13 = |s: &&SupportedCipherSuite| s.version().version == rustls::ProtocolVersion::TLSv1_3;
        let v12: Vec<_> = all.iter().filter(|s| !is13(s)).copied().collect();
        let v13: Vec<_> = all.iter().filter(is13).copied().collect();
        let pick = tls12_suites("ECDHE-RSA-AES256-GCM-SHA384", &v12);
        assert_eq!(pick.iter().map(openssl_name).collect::<Vec<_>>(), vec!["ECDHE-RSA-AES256-GCM-SHA384"]);
        assert_eq!(tls12_suites("DEFAULT:!MEDIUM", &v12).len(), v12.len());
        assert_eq!(tls12_suites("ECDHE+AESGCM:!aNULL", &v12).len(), 4);
        assert!(tls12_suites("DES-CBC3-SHA", &v12).is_empty());
        assert_eq!(tls13_suites("TLS_CHACHA20_POLY1305_SHA256", &v13).len(), 1);
        assert!(tls13_suites("TLS_BOGUS", &v13).is_empty());
    }
}
