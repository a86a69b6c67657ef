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
            // clientAuth too: a replica or a sentinel presents its server certificate when
            // it connects to a master over TLS.
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n",
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

impl TestCertificates {
    /// A client of `url` (`rediss://…`) trusting the CA and presenting the client
    /// certificate.
    pub fn client(&self, url: String) -> redis::RedisResult<redis::Client> {
        let read = |path: &PathBuf| std::fs::read(path).expect("read a test certificate");
        redis::Client::build_with_tls(
            url,
            redis::TlsCertificates {
                client_tls: Some(redis::ClientTlsConfig {
                    client_cert: read(&self.client_cert),
                    client_key: read(&self.client_key),
                }),
                root_cert: Some(read(&self.ca)),
            },
        )
    }

    /// `redis-server` options serving TLS only on `port` with these certificates, client
    /// certificates required, replication over TLS.
    pub fn server_args(&self, port: u16) -> Vec<String> {
        let path = |p: &PathBuf| p.display().to_string();
        vec![
            "--port".into(),
            "0".into(),
            "--tls-port".into(),
            port.to_string(),
            "--tls-cert-file".into(),
            path(&self.server_cert),
            "--tls-key-file".into(),
            path(&self.server_key),
            "--tls-ca-cert-file".into(),
            path(&self.ca),
            "--tls-auth-clients".into(),
            "yes".into(),
            "--tls-replication".into(),
            "yes".into(),
        ]
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
