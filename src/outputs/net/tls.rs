//! `output.X.ssl.*` for network outputs, as a rustls client configuration: CAs (files or inline
//! PEM; the system bundle or webpki roots when none), client certificate/key,
//! `verification_mode` (`full`/`strict`: chain and host name; `certificate`: chain only; `none`:
//! nothing), `supported_protocols` (TLSv1.2, TLSv1.3), `cipher_suites` (Go/OpenSSL-style names
//! matched to rustls suites).

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use serde::Deserialize;
use std::sync::Arc;

/// Logged as libbeat's `tls` logger.
const LOG: &str = "packetbeat::outputs::tls";

/// `output.X.ssl`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct SslConfig {
    pub enabled: Option<bool>,
    /// A string or a list of strings, as Beats accepts it.
    #[serde(deserialize_with = "crate::config::types::strings")]
    pub certificate_authorities: Vec<String>,
    pub certificate: Option<String>,
    pub key: Option<String>,
    pub key_passphrase: Option<String>,
    pub verification_mode: String,
    /// A string or a list of strings, as Beats accepts it.
    #[serde(deserialize_with = "crate::config::types::strings")]
    pub supported_protocols: Vec<String>,
    /// A string or a list of strings, as Beats accepts it.
    #[serde(deserialize_with = "crate::config::types::strings")]
    pub cipher_suites: Vec<String>,
    /// A string or a list of strings, as Beats accepts it.
    #[serde(deserialize_with = "crate::config::types::strings")]
    pub curve_types: Vec<String>,
    pub ca_trusted_fingerprint: Option<String>,
    pub renegotiation: Option<String>,
}

impl Default for SslConfig {
    fn default() -> Self {
        SslConfig {
            enabled: None,
            certificate_authorities: Vec::new(),
            certificate: None,
            key: None,
            key_passphrase: None,
            verification_mode: "full".into(),
            supported_protocols: Vec::new(),
            cipher_suites: Vec::new(),
            curve_types: Vec::new(),
            ca_trusted_fingerprint: None,
            renegotiation: None,
        }
    }
}

impl SslConfig {
    /// An `ssl` section is on unless it says `enabled: false`.
    pub fn enabled(ssl: &Option<SslConfig>) -> Option<&SslConfig> {
        ssl.as_ref().filter(|s| s.enabled.unwrap_or(true))
    }
}

fn pem_source(s: &str) -> anyhow::Result<Vec<u8>> {
    if s.trim_start().starts_with("-----BEGIN") {
        Ok(s.as_bytes().to_vec())
    } else {
        std::fs::read(s).map_err(|e| anyhow::anyhow!("reading {s}: {e}"))
    }
}

fn load_certs(s: &str) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let pem = pem_source(s)?;
    let certs: Result<Vec<_>, _> = rustls_pemfile::certs(&mut pem.as_slice()).collect();
    let certs = certs.map_err(|e| anyhow::anyhow!("parsing certificates in {s}: {e}"))?;
    anyhow::ensure!(!certs.is_empty(), "no certificate found in {s}");
    Ok(certs)
}

fn load_key(s: &str) -> anyhow::Result<PrivateKeyDer<'static>> {
    let pem = pem_source(s)?;
    rustls_pemfile::private_key(&mut pem.as_slice())
        .map_err(|e| anyhow::anyhow!("parsing key {s}: {e}"))?
        .ok_or_else(|| anyhow::anyhow!("no private key found in {s}"))
}

fn normalise_suite(s: &str) -> String {
    let u = s.to_ascii_uppercase().replace('-', "_");
    let u = u
        .strip_prefix("TLS13_")
        .or_else(|| u.strip_prefix("TLS_"))
        .unwrap_or(&u)
        .replace("WITH_", "");
    u.replace('_', "")
}

fn provider(ssl: &SslConfig, key: &str) -> anyhow::Result<CryptoProvider> {
    let mut p = rustls::crypto::ring::default_provider();
    let wanted = ssl.cipher_suites.clone();
    if !wanted.is_empty() {
        let mut suites = Vec::new();
        for w in &wanted {
            let n = normalise_suite(w);
            let found: Vec<_> = p
                .cipher_suites
                .iter()
                .filter(|s| normalise_suite(&format!("{:?}", s.suite())).starts_with(&n))
                .cloned()
                .collect();
            anyhow::ensure!(
                !found.is_empty(),
                "unsupported cipher suite '{w}' accessing '{key}.cipher_suites'"
            );
            suites.extend(found);
        }
        // TLS 1.3 suites are not configurable in Go; keep them.
        for s in &p.cipher_suites {
            if format!("{:?}", s.suite()).starts_with("TLS13_")
                && !suites.iter().any(|x| x.suite() == s.suite())
            {
                suites.push(*s);
            }
        }
        p.cipher_suites = suites;
    }
    Ok(p)
}

fn versions(
    ssl: &SslConfig,
    key: &str,
) -> anyhow::Result<Vec<&'static rustls::SupportedProtocolVersion>> {
    let wanted = ssl.supported_protocols.clone();
    if wanted.is_empty() {
        return Ok(vec![&rustls::version::TLS13, &rustls::version::TLS12]);
    }
    let mut v = Vec::new();
    for w in wanted {
        match w.as_str() {
            "TLSv1.3" => v.push(&rustls::version::TLS13),
            "TLSv1.2" => v.push(&rustls::version::TLS12),
            "TLSv1.0" | "TLSv1.1" | "SSLv3" => {
                tracing::warn!(target: LOG, "{key}.supported_protocols: {w} is not supported by this build (TLS 1.2 and 1.3 only); ignored")
            }
            other => {
                anyhow::bail!("invalid TLS version '{other}' accessing '{key}.supported_protocols'")
            }
        }
    }
    anyhow::ensure!(
        !v.is_empty(),
        "{key}.supported_protocols: none of the listed versions is supported (TLSv1.2, TLSv1.3)"
    );
    Ok(v)
}

fn roots(ssl: &SslConfig) -> anyhow::Result<RootCertStore> {
    let mut store = RootCertStore::empty();
    let cas = ssl.certificate_authorities.clone();
    if cas.is_empty() {
        let bundle = [
            "/etc/ssl/certs/ca-certificates.crt",
            "/etc/pki/tls/certs/ca-bundle.crt",
        ]
        .iter()
        .find_map(|p| load_certs(p).ok());
        match bundle {
            Some(certs) => {
                store.add_parsable_certificates(certs);
            }
            None => store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        }
    } else {
        for ca in cas {
            for c in load_certs(&ca)? {
                store.add(c).map_err(|e| anyhow::anyhow!("CA {ca}: {e}"))?;
            }
        }
    }
    Ok(store)
}

/// `verification_mode: certificate` (chain, no host name) and `none`.
#[derive(Debug)]
struct Verifier {
    inner: Option<Arc<rustls::client::WebPkiServerVerifier>>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(inner) = &self.inner else {
            return Ok(ServerCertVerified::assertion());
        };
        match inner.verify_server_cert(end_entity, intermediates, server_name, ocsp, now) {
            Err(rustls::Error::InvalidCertificate(e))
                if format!("{e:?}").starts_with("NotValidForName") =>
            {
                Ok(ServerCertVerified::assertion())
            }
            other => other,
        }
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Builds the rustls client configuration for `ssl`; `key` (`output.X.ssl`) names it in
/// messages.
pub fn client_config(ssl: &SslConfig, key: &str) -> anyhow::Result<Arc<ClientConfig>> {
    let provider = Arc::new(provider(ssl, key)?);
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions(ssl, key)?)
        .map_err(|e| anyhow::anyhow!("TLS configuration: {e}"))?;
    let mode = ssl.verification_mode.to_ascii_lowercase();
    let builder = match mode.as_str() {
        "" | "full" | "strict" => builder.with_root_certificates(roots(ssl)?),
        "certificate" => {
            let inner = rustls::client::WebPkiServerVerifier::builder_with_provider(
                Arc::new(roots(ssl)?),
                provider.clone(),
            )
            .build()
            .map_err(|e| anyhow::anyhow!("TLS configuration: {e}"))?;
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(Verifier {
                    inner: Some(inner),
                    provider,
                }))
        }
        "none" => {
            // libbeat's warning, said when the output is built.
            tracing::warn!(target: LOG, "SSL/TLS verifications disabled. ({key}.verification_mode: none)");
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(Verifier {
                    inner: None,
                    provider,
                }))
        }
        other => {
            anyhow::bail!("unknown verification mode '{other}' accessing '{key}.verification_mode'")
        }
    };
    if ssl.key_passphrase.is_some() {
        tracing::warn!(target: LOG, "{key}.key_passphrase is not supported by this build; use an unencrypted key");
    }
    let cfg = match (&ssl.certificate, &ssl.key) {
        (Some(c), Some(k)) => builder
            .with_client_auth_cert(load_certs(c)?, load_key(k)?)
            .map_err(|e| anyhow::anyhow!("client certificate: {e}"))?,
        (None, None) => builder.with_no_client_auth(),
        _ => anyhow::bail!("{key}: certificate and key must be given together"),
    };
    Ok(Arc::new(cfg))
}

pub fn server_name(host: &str) -> anyhow::Result<ServerName<'static>> {
    ServerName::try_from(host.to_string())
        .map_err(|e| anyhow::anyhow!("invalid TLS server name '{host}': {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suite_names() {
        assert_eq!(
            normalise_suite("ECDHE-RSA-AES-128-GCM-SHA256"),
            normalise_suite("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256")
        );
        let ssl = SslConfig {
            cipher_suites: vec!["ECDHE-RSA-AES-256-GCM-SHA384".into()],
            ..Default::default()
        };
        let p = provider(&ssl, "output.x.ssl").unwrap();
        assert!(p
            .cipher_suites
            .iter()
            .any(|s| format!("{:?}", s.suite()) == "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"));
        assert!(client_config(
            &SslConfig {
                verification_mode: "none".into(),
                ..Default::default()
            },
            "output.x.ssl"
        )
        .is_ok());
        let err = client_config(
            &SslConfig {
                verification_mode: "bogus".into(),
                ..Default::default()
            },
            "output.x.ssl",
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown verification mode 'bogus' accessing 'output.x.ssl.verification_mode'"
        );
    }
}
