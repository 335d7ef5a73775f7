//! Peer certificates of X.509 version 1 (or 2), which webpki refuses outright and OpenSSL, and
//! so Redis, accepts: Redis's own `utils/gen-test-certs.sh` makes its generic `redis.crt` that
//! way (`openssl x509 -req` without extensions). Such a certificate is checked here as OpenSSL
//! checks it: signed by a configured CA, within its validity period. Version 3 certificates
//! never come here (webpki checks them).
//!
//! Only the fields needed are read, with a small DER reader that refuses anything malformed.
//! A legacy certificate must be issued directly by a configured CA (a chain through
//! intermediates is not followed).

use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, SubjectPublicKeyInfoDer, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, Error, RootCertStore};

/// One DER element: its tag, its contents and everything after it.
struct Tlv<'a> {
    tag: u8,
    contents: &'a [u8],
    whole: &'a [u8],
    rest: &'a [u8],
}

fn tlv(input: &[u8]) -> Option<Tlv<'_>> {
    let (&tag, after_tag) = input.split_first()?;
    let (&first, mut after_len) = after_tag.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || after_len.len() < n {
            return None;
        }
        let (bytes, rest) = after_len.split_at(n);
        after_len = rest;
        bytes.iter().fold(0usize, |acc, b| (acc << 8) | usize::from(*b))
    };
    if after_len.len() < len {
        return None;
    }
    let header = input.len() - after_len.len();
    let (contents, rest) = after_len.split_at(len);
    Some(Tlv { tag, contents, whole: &input[..header + len], rest })
}

fn expect(input: &[u8], tag: u8) -> Option<Tlv<'_>> {
    tlv(input).filter(|t| t.tag == tag)
}

const SEQUENCE: u8 = 0x30;
const INTEGER: u8 = 0x02;
const BIT_STRING: u8 = 0x03;
const VERSION: u8 = 0xa0;
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;

/// The parts of a certificate the checks use.
pub struct LegacyCert<'a> {
    /// The signed part (tbsCertificate, tag and length included).
    signed: &'a [u8],
    /// The signature algorithm (AlgorithmIdentifier contents).
    signature_alg: &'a [u8],
    /// The signature (BIT STRING contents after the unused-bits byte).
    signature: &'a [u8],
    /// The issuer's Name (contents).
    issuer: &'a [u8],
    not_before: u64,
    not_after: u64,
    /// SubjectPublicKeyInfo, tag and length included.
    spki: &'a [u8],
}

/// A BIT STRING's bits (no unused bits allowed, as in keys and signatures).
fn bits(contents: &[u8]) -> Option<&[u8]> {
    match contents.split_first() {
        Some((0, b)) => Some(b),
        _ => None,
    }
}

/// Seconds since the epoch of a UTCTime / GeneralizedTime in the `...Z` form X.509 requires.
fn time(t: &Tlv<'_>) -> Option<u64> {
    let s = std::str::from_utf8(t.contents).ok()?;
    let s = s.strip_suffix('Z')?;
    let (year, rest) = match t.tag {
        UTC_TIME if s.len() == 12 => {
            let yy: u64 = s[..2].parse().ok()?;
            (if yy < 50 { 2000 + yy } else { 1900 + yy }, &s[2..])
        }
        GENERALIZED_TIME if s.len() == 14 => (s[..4].parse().ok()?, &s[4..]),
        _ => return None,
    };
    if !rest.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let field = |i: usize| rest[i..i + 2].parse::<u64>().ok();
    let (month, day, h, m, sec) = (field(0)?, field(2)?, field(4)?, field(6)?, field(8)?);
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let month_days = [31, if leap { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    if !(1..=12).contains(&month) || day == 0 || day > month_days[(month - 1) as usize] || h > 23 || m > 59 || sec > 59
    {
        return None;
    }
    // Days from the civil date (proleptic Gregorian), then seconds.
    let (y, mo) = if month <= 2 { (year.checked_sub(1)?, month + 9) } else { (year, month - 3) };
    let era = y / 400;
    let yoe = y % 400;
    let doy = (153 * mo + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = (era * 146_097 + doe).checked_sub(719_468)?;
    Some(days * 86_400 + h * 3600 + m * 60 + sec)
}

impl<'a> LegacyCert<'a> {
    /// The certificate if it is a well-formed X.509 v1 or v2 one; None for v3 (and for
    /// anything malformed, which webpki then refuses).
    pub fn parse(der: &'a [u8]) -> Option<Self> {
        let cert = expect(der, SEQUENCE).filter(|c| c.rest.is_empty())?;
        let tbs = expect(cert.contents, SEQUENCE)?;
        let sig_alg = expect(tbs.rest, SEQUENCE)?;
        let sig = expect(sig_alg.rest, BIT_STRING).filter(|s| s.rest.is_empty())?;
        let mut fields = tbs.contents;
        if let Some(v) = expect(fields, VERSION) {
            let n = expect(v.contents, INTEGER)?;
            if n.contents != [0] && n.contents != [1] {
                return None;
            }
            fields = v.rest;
        }
        let serial = expect(fields, INTEGER)?;
        let inner_alg = expect(serial.rest, SEQUENCE)?;
        let issuer = expect(inner_alg.rest, SEQUENCE)?;
        let validity = expect(issuer.rest, SEQUENCE)?;
        let not_before = tlv(validity.contents)?;
        let not_after = tlv(not_before.rest)?;
        let subject = expect(validity.rest, SEQUENCE)?;
        let spki = expect(subject.rest, SEQUENCE)?;
        if inner_alg.contents != sig_alg.contents {
            return None;
        }
        Some(LegacyCert {
            signed: tbs.whole,
            signature_alg: sig_alg.contents,
            signature: bits(sig.contents)?,
            issuer: issuer.contents,
            not_before: time(&not_before)?,
            not_after: time(&not_after)?,
            spki: spki.whole,
        })
    }

    /// Checks the certificate as OpenSSL does for a peer: a configured CA signed it, and
    /// `now` is within its validity period.
    pub fn verify(&self, roots: &RootCertStore, algs: &WebPkiSupportedAlgorithms, now: UnixTime) -> Result<(), Error> {
        let signed_by = |spki: &[u8]| {
            let Some((key_alg, key)) = spki_parts(spki) else { return false };
            algs.all.iter().any(|alg| {
                alg.signature_alg_id().as_ref() == self.signature_alg
                    && alg.public_key_alg_id().as_ref() == key_alg
                    && alg.verify_signature(key, self.signed, self.signature).is_ok()
            })
        };
        let issued = roots
            .roots
            .iter()
            .filter(|ta| ta.subject.as_ref() == self.issuer)
            .any(|ta| signed_by(ta.subject_public_key_info.as_ref()));
        if !issued {
            return Err(CertificateError::UnknownIssuer.into());
        }
        let now = now.as_secs();
        if now < self.not_before {
            return Err(CertificateError::NotValidYet.into());
        }
        if now > self.not_after {
            return Err(CertificateError::Expired.into());
        }
        Ok(())
    }

    /// Checks a handshake signature made with the certificate's key (TLS 1.3 when `tls13`).
    pub fn verify_signature(
        &self,
        message: &[u8],
        dss: &DigitallySignedStruct,
        algs: &WebPkiSupportedAlgorithms,
        tls13: bool,
    ) -> Result<(), Error> {
        let bad = || Error::InvalidCertificate(CertificateError::BadSignature);
        if tls13 {
            let spki = SubjectPublicKeyInfoDer::from(self.spki);
            return rustls::crypto::verify_tls13_signature_with_raw_key(message, &spki, dss, algs).map(|_| ());
        }
        let whole = expect(self.spki, SEQUENCE).ok_or_else(bad)?;
        let (key_alg, key) = spki_parts(whole.contents).ok_or_else(bad)?;
        let candidates = algs.mapping.iter().find(|(scheme, _)| *scheme == dss.scheme).map(|(_, a)| *a);
        let Some(candidates) = candidates else {
            return Err(rustls::PeerMisbehaved::SignedHandshakeWithUnadvertisedSigScheme.into());
        };
        let ok = candidates.iter().any(|alg| {
            alg.public_key_alg_id().as_ref() == key_alg && alg.verify_signature(key, message, dss.signature()).is_ok()
        });
        if ok {
            Ok(())
        } else {
            Err(bad())
        }
    }
}

/// A SubjectPublicKeyInfo's contents split into the algorithm (AlgorithmIdentifier contents)
/// and the key bits.
fn spki_parts(contents: &[u8]) -> Option<(&[u8], &[u8])> {
    let alg = expect(contents, SEQUENCE)?;
    let key = expect(alg.rest, BIT_STRING).filter(|k| k.rest.is_empty())?;
    Some((alg.contents, bits(key.contents)?))
}

/// The legacy certificate `cert` is, if it is one.
pub fn legacy<'a>(cert: &'a CertificateDer<'_>) -> Option<LegacyCert<'a>> {
    LegacyCert::parse(cert.as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_times_as_x509_writes_them() {
        let t = |tag: u8, s: &str| time(&Tlv { tag, contents: s.as_bytes(), whole: &[], rest: &[] });
        assert_eq!(t(UTC_TIME, "700101000000Z"), Some(0));
        assert_eq!(t(UTC_TIME, "200101000000Z"), Some(1_577_836_800));
        assert_eq!(t(GENERALIZED_TIME, "20500101000000Z"), Some(2_524_608_000));
        assert_eq!(t(UTC_TIME, "200229235959Z"), Some(1_583_020_799));
        assert_eq!(t(UTC_TIME, "210229000000Z"), None);
        assert_eq!(t(UTC_TIME, "201301000000Z"), None);
        assert_eq!(t(UTC_TIME, "2001010000Z"), None);
        assert_eq!(t(UTC_TIME, "20010100000+Z"), None);
        assert_eq!(t(GENERALIZED_TIME, "200101000000Z"), None);
    }

    #[test]
    fn malformed_der_is_not_a_certificate() {
        assert!(LegacyCert::parse(&[]).is_none());
        assert!(LegacyCert::parse(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]).is_none());
        assert!(LegacyCert::parse(&[0x30, 0x80]).is_none());
        assert!(LegacyCert::parse(&[0x30, 0x02, 0x30, 0x00]).is_none());
        // Every prefix of a truncated header is refused without panicking.
        let junk = [0x30, 0x0a, 0x30, 0x08, 0xa0, 0x03, 0x02, 0x01, 0x02, 0x02, 0x01, 0x01];
        for n in 0..junk.len() {
            assert!(LegacyCert::parse(&junk[..n]).is_none());
        }
    }
}
