//! Checking peers' certificates as Redis (OpenSSL with SSL_VERIFY_PEER) does: the chain must
//! lead to a configured CA; the name in it is not looked at (Redis sets no host name to match;
//! cluster nodes are reached by IP address and their certificates seldom name it). X.509 v1
//! certificates, which webpki refuses and OpenSSL accepts, are checked by `legacy`.

use super::legacy::legacy;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, Error, RootCertStore, SignatureScheme};
use std::sync::Arc;

/// What both directions need for legacy certificates: the CAs and the signature algorithms.
#[derive(Debug)]
pub struct Legacy {
    pub roots: Arc<RootCertStore>,
    pub algs: WebPkiSupportedAlgorithms,
}

impl Legacy {
    /// Some(verdict) when `cert` is a legacy certificate (webpki is not asked then).
    fn chain(&self, cert: &CertificateDer<'_>, now: UnixTime) -> Option<Result<(), Error>> {
        legacy(cert).map(|c| c.verify(&self.roots, &self.algs, now))
    }

    fn signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
        tls13: bool,
    ) -> Option<Result<HandshakeSignatureValid, Error>> {
        legacy(cert)
            .map(|c| c.verify_signature(message, dss, &self.algs, tls13).map(|_| HandshakeSignatureValid::assertion()))
    }
}

/// The handshake-signature methods both verifier traits share: a legacy certificate's key is
/// read by `legacy`, any other certificate's by webpki.
macro_rules! handshake_signatures {
    () => {
        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, Error> {
            let legacy = self.legacy.signature(message, cert, dss, false);
            legacy.unwrap_or_else(|| self.webpki.verify_tls12_signature(message, cert, dss))
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, Error> {
            let legacy = self.legacy.signature(message, cert, dss, true);
            legacy.unwrap_or_else(|| self.webpki.verify_tls13_signature(message, cert, dss))
        }

        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.webpki.supported_verify_schemes()
        }
    };
}

/// The certificate of a server slotcore connects to (its master, a cluster peer): WebPKI
/// chain verification without the name check.
#[derive(Debug)]
pub struct ChainOnly {
    pub webpki: Arc<WebPkiServerVerifier>,
    pub legacy: Legacy,
}

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        if let Some(verdict) = self.legacy.chain(end_entity, now) {
            return verdict.map(|_| ServerCertVerified::assertion());
        }
        match self.webpki.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Err(Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            verdict => verdict,
        }
    }

    handshake_signatures!();
}

/// The certificate of a client (a client on tls-port, a replica, a cluster peer): WebPKI
/// client verification, legacy certificates checked as OpenSSL does.
#[derive(Debug)]
pub struct ClientChain {
    pub webpki: Arc<dyn ClientCertVerifier>,
    pub legacy: Legacy,
}

impl ClientCertVerifier for ClientChain {
    fn offer_client_auth(&self) -> bool {
        self.webpki.offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.webpki.client_auth_mandatory()
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.webpki.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        match self.legacy.chain(end_entity, now) {
            Some(verdict) => verdict.map(|_| ClientCertVerified::assertion()),
            None => self.webpki.verify_client_cert(end_entity, intermediates, now),
        }
    }

    handshake_signatures!();
}
