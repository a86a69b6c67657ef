//! [`TestCertificates`]: a CA, a server and a client certificate made at test time with the
//! `openssl` command, for a private `redis-server` with TLS.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Certificates made for one test, in a directory of their own: a CA, a server certificate
/// for `127.0.0.1`/`localhost` and a client certificate, both signed by it, and a second CA
/// that signed neither (to check that an untrusted server is refused). PEM files, keys
/// unencrypted.
#[derive(Debug, Clone)]
pub struct TestCertificates {
    /// The CA that signed the server and client certificates.
    pub ca: PathBuf,
    /// The server's certificate.
    pub server_cert: PathBuf,
    /// The server's private key.
    pub server_key: PathBuf,
    /// The client's certificate.
    pub client_cert: PathBuf,
    /// The client's private key.
    pub client_key: PathBuf,
    /// A CA that signed nothing of the above.
    pub other_ca: PathBuf,
}

impl TestCertificates {
    /// Makes the certificates in `dir` (P-256 keys, valid for two days).
    pub fn create(dir: &Path) -> TestCertificates {
        let path = |name: &str| dir.join(name);
        make_ca(dir, "ca", "lightbus test CA");
        make_ca(dir, "other-ca", "lightbus untrusted CA");
        make_leaf(
            dir,
            "server",
            "127.0.0.1",
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
        );
        make_leaf(
            dir,
            "client",
            "lightbus-test-client",
            "extendedKeyUsage=clientAuth\n",
        );
        TestCertificates {
            ca: path("ca.pem"),
            server_cert: path("server.pem"),
            server_key: path("server.key"),
            client_cert: path("client.pem"),
            client_key: path("client.key"),
            other_ca: path("other-ca.pem"),
        }
    }
}

fn make_ca(dir: &Path, name: &str, subject: &str) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            &format!("/CN={subject}"),
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.pem"),
        ],
    );
}

fn make_leaf(dir: &Path, name: &str, common_name: &str, extensions: &str) {
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-subj",
            &format!("/CN={common_name}"),
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.csr"),
        ],
    );
    let ext = format!("{name}.ext");
    std::fs::write(
        dir.join(&ext),
        format!("basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n{extensions}"),
    )
    .expect("write the certificate's extensions");
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            &ext,
            "-out",
            &format!("{name}.pem"),
        ],
    );
}

fn openssl(dir: &Path, args: &[&str]) {
    let output = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run openssl ({e}): install it (apt-get install openssl)")
        });
    assert!(
        output.status.success(),
        "openssl {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
}
