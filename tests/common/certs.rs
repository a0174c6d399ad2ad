//! Test certificates made with rcgen.

/// A CA, a server certificate for `localhost` and 127.0.0.1 and a client certificate, as PEM
/// files in a temp dir: `ca.pem`, `server.pem`, `server.key`, `client.pem`, `client.key`.
pub struct Certs {
    dir: tempfile::TempDir,
}

impl Certs {
    pub fn new() -> Certs {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
        let dir = tempfile::tempdir().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_key = KeyPair::generate().unwrap();
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let leaf = |names: Vec<String>| {
            let key = KeyPair::generate().unwrap();
            let cert = CertificateParams::new(names)
                .unwrap()
                .signed_by(&key, &ca, &ca_key)
                .unwrap();
            (cert.pem(), key.serialize_pem())
        };
        let (scert, skey) = leaf(vec!["localhost".into(), "127.0.0.1".into()]);
        let (ccert, ckey) = leaf(vec!["client".into()]);
        for (n, s) in [
            ("ca.pem", ca.pem()),
            ("server.pem", scert),
            ("server.key", skey),
            ("client.pem", ccert),
            ("client.key", ckey),
        ] {
            std::fs::write(dir.path().join(n), s).unwrap();
        }
        Certs { dir }
    }
    /// The path of one of the files.
    pub fn p(&self, n: &str) -> String {
        self.dir.path().join(n).display().to_string()
    }

    /// A rustls server configuration with `server.pem` and `server.key`, for the tests' own TLS
    /// servers.
    pub fn server_config(&self) -> std::sync::Arc<rustls::ServerConfig> {
        let pem = |n: &str| std::fs::read(self.p(n)).unwrap();
        let chain: Vec<_> = rustls_pemfile::certs(&mut &pem("server.pem")[..])
            .collect::<Result<_, _>>()
            .unwrap();
        let key = rustls_pemfile::private_key(&mut &pem("server.key")[..])
            .unwrap()
            .unwrap();
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        std::sync::Arc::new(
            rustls::ServerConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(chain, key)
                .unwrap(),
        )
    }
}
