//! TLS to Postgres with rustls (no OpenSSL): libpq's `disable`, `require` and `verify-full`.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::PoolSetupError;
use crate::config::DbTls;

pub fn connector(mode: &DbTls) -> Result<MakeRustlsConnect, PoolSetupError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| PoolSetupError::Build(e.to_string()))?;
    let config = match mode {
        // Never used for a handshake: the connection is told not to ask for TLS.
        DbTls::Disable => builder
            .with_root_certificates(RootCertStore::empty())
            .with_no_client_auth(),
        DbTls::Require => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(EncryptOnly(provider)))
            .with_no_client_auth(),
        DbTls::VerifyFull { ca_file } => {
            let path = ca_file.display().to_string();
            let bundle_error = |reason: String| PoolSetupError::CaBundle {
                path: path.clone(),
                reason,
            };
            let mut roots = RootCertStore::empty();
            let certificates = CertificateDer::pem_file_iter(ca_file)
                .map_err(|e| bundle_error(format!("cannot read it ({e})")))?;
            for certificate in certificates {
                let certificate =
                    certificate.map_err(|e| bundle_error(format!("not a PEM bundle ({e})")))?;
                roots
                    .add(certificate)
                    .map_err(|e| bundle_error(format!("holds an unusable certificate ({e})")))?;
            }
            if roots.is_empty() {
                return Err(bundle_error("holds no certificate".into()));
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
    };
    Ok(MakeRustlsConnect::new(config))
}

/// `sslmode=require`: the channel is encrypted and the handshake signed, but any certificate
/// is accepted, as libpq does. Production uses verify-full.
#[derive(Debug)]
struct EncryptOnly(Arc<CryptoProvider>);

impl ServerCertVerifier for EncryptOnly {
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
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
