//! TLS options (`protos/tls/config.go`, `fingerprint.go`). Names and defaults are Packetbeat's.

use serde::Deserialize;

/// The protocol-specific keys of a `tls` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct TlsConfig {
    pub send_certificates: bool,
    pub include_raw_certificates: bool,
    pub include_detailed_fields: bool,
    #[serde(deserialize_with = "crate::config::types::strings")]
    pub fingerprints: Vec<String>,
}

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig {
            send_certificates: true,
            include_raw_certificates: false,
            include_detailed_fields: true,
            fingerprints: vec!["sha1".into()],
        }
    }
}

/// A certificate fingerprint algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fingerprint {
    Md5,
    Sha1,
    Sha256,
}

impl Fingerprint {
    /// `GetFingerprintAlgorithm`: case-insensitive, with the aliases `sha-1` and `sha-256`.
    pub fn by_name(name: &str) -> Result<Fingerprint, String> {
        match name.to_lowercase().as_str() {
            "md5" => Ok(Fingerprint::Md5),
            "sha1" | "sha-1" => Ok(Fingerprint::Sha1),
            "sha256" | "sha-256" => Ok(Fingerprint::Sha256),
            _ => Err(format!(
                "fingerprint algorithm '{name}' not found. Use one of [md5 sha1 sha256]"
            )),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Fingerprint::Md5 => "md5",
            Fingerprint::Sha1 => "sha1",
            Fingerprint::Sha256 => "sha256",
        }
    }

    /// Upper-case hex digest.
    pub fn hash(self, data: &[u8]) -> String {
        use sha2::Digest;
        let d: Vec<u8> = match self {
            Fingerprint::Md5 => md5::Md5::digest(data).to_vec(),
            Fingerprint::Sha1 => sha1::Sha1::digest(data).to_vec(),
            Fingerprint::Sha256 => sha2::Sha256::digest(data).to_vec(),
        };
        super::x509::hex(&d).to_uppercase()
    }
}

/// Everything the analyzer needs, resolved once (`tlsPlugin.setFromConfig`).
#[derive(Debug, Clone)]
pub struct TlsSettings {
    pub send_certificates: bool,
    pub include_raw_certificates: bool,
    pub include_detailed_fields: bool,
    pub fingerprints: Vec<Fingerprint>,
}

impl TlsSettings {
    pub fn new(cfg: &TlsConfig) -> Result<TlsSettings, String> {
        let fingerprints = cfg
            .fingerprints
            .iter()
            .map(|n| Fingerprint::by_name(n))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(TlsSettings {
            send_certificates: cfg.send_certificates,
            include_raw_certificates: cfg.include_raw_certificates,
            include_detailed_fields: cfg.include_detailed_fields,
            fingerprints,
        })
    }

    /// Settings with Packetbeat's defaults (for tests).
    pub fn defaults() -> TlsSettings {
        TlsSettings::new(&TlsConfig::default()).expect("default config is valid")
    }
}
