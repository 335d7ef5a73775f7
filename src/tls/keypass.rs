//! `tls-key-file-pass`: private keys encrypted as PKCS#8 (`-----BEGIN ENCRYPTED PRIVATE
//! KEY-----`, what OpenSSL 3's `genrsa -aes256`, `genpkey -aes256` and `pkcs8 -topk8` write:
//! PBES2 with PBKDF2 or scrypt, AES-CBC). The legacy OpenSSL form (`Proc-Type: 4,ENCRYPTED`
//! headers, MD5-based key derivation) is refused with a way out.

use pkcs8::der::pem::PemLabel;
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

/// The decrypted key of a PEM text holding an encrypted one.
pub fn decrypt(pem: &[u8], pass: Option<&str>) -> Result<PrivateKeyDer<'static>, String> {
    if pem.windows(22).any(|w| w == b"Proc-Type: 4,ENCRYPTED") {
        return Err(
            "legacy OpenSSL key encryption is not supported; convert the key with `openssl pkcs8 -topk8 -v2 aes256`"
                .into(),
        );
    }
    let Some(pass) = pass else { return Err("the key is encrypted and tls-key-file-pass is not set".into()) };
    let text = std::str::from_utf8(pem).map_err(|_| "not a PEM file".to_string())?;
    let (label, der) = pkcs8::der::pem::decode_vec(text.trim().as_bytes()).map_err(|e| format!("bad PEM: {e}"))?;
    if label != pkcs8::EncryptedPrivateKeyInfo::PEM_LABEL {
        return Err(format!("unexpected PEM section {label}"));
    }
    let info =
        pkcs8::EncryptedPrivateKeyInfo::try_from(der.as_slice()).map_err(|e| format!("bad encrypted key: {e}"))?;
    let plain = info.decrypt(pass).map_err(|_| "bad decrypt (wrong tls-key-file-pass?)".to_string())?;
    Ok(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(plain.as_bytes().to_vec())))
}
