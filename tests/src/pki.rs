//! `Pki`: a certificate authority, server and client certificates it
//! signed, and a rogue CA, made by rcgen in a temporary folder (removed on
//! `Drop`), for tests of TLS to the control plane.

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair,
};
use std::path::{Path, PathBuf};

/// The folder holding `ca.pem`, `server.pem`/`server.key` (for `localhost`
/// and `127.0.0.1`), `client.pem`/`client.key` and `rogue.pem`.
pub struct Pki {
    dir: PathBuf,
}

impl Pki {
    /// Makes the certificates.
    pub fn new() -> Pki {
        let dir = std::env::temp_dir().join("geolb-tests").join(format!(
            "{}-pki-{}",
            std::process::id(),
            fastrand::u64(..)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let ca = new_ca("geolb test CA");
        std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
        leaf(
            &dir,
            "server",
            &["localhost", "127.0.0.1"],
            ExtendedKeyUsagePurpose::ServerAuth,
            &ca,
        );
        leaf(
            &dir,
            "client",
            &[],
            ExtendedKeyUsagePurpose::ClientAuth,
            &ca,
        );
        std::fs::write(dir.join("rogue.pem"), new_ca("rogue CA").pem()).unwrap();
        Pki { dir }
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A file in it, e.g. `ca.pem`.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// A nats-server `tls { }` block with the server certificate; with
    /// `verify`, client certificates signed by the CA are required.
    pub fn server_tls(&self, verify: bool) -> String {
        format!(
            "tls {{\n  cert_file: {:?}\n  key_file: {:?}\n  ca_file: {:?}\n  verify: {verify}\n  timeout: 2\n}}\n",
            self.path("server.pem"),
            self.path("server.key"),
            self.path("ca.pem"),
        )
    }
}

impl Default for Pki {
    fn default() -> Pki {
        Pki::new()
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn new_ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}

fn leaf(
    dir: &Path,
    name: &str,
    sans: &[&str],
    usage: ExtendedKeyUsagePurpose,
    issuer: &CertifiedIssuer<'static, KeyPair>,
) {
    let key = KeyPair::generate().unwrap();
    let mut params =
        CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
    params.distinguished_name.push(DnType::CommonName, name);
    params.extended_key_usages = vec![usage];
    let cert = params.signed_by(&key, issuer).unwrap();
    std::fs::write(dir.join(format!("{name}.pem")), cert.pem()).unwrap();
    std::fs::write(dir.join(format!("{name}.key")), key.serialize_pem()).unwrap();
}
