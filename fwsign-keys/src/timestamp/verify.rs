//! Checking a timestamp token against a trusted CA.
//!
//! In order, each failure naming its check:
//! 1. the token decodes (CMS SignedData over a `TSTInfo`);
//! 2. the imprint is the hash of the image's signature;
//! 3. the signer's certificate is in the token and is the one the SignerInfo names;
//! 4. the signed attributes name `TSTInfo` as content type and carry its digest, and the
//!    TSA's signature over them verifies (ECDSA P-256);
//! 5. the certificate has the time-stamping extended key usage, critical and alone
//!    (RFC 3161 §2.3);
//! 6. the certificate chains to a CA from the trust file, every certificate on the way valid
//!    at `genTime` (not now: a token must outlive its TSA certificate) and every issuer a CA.

use cms::cert::CertificateChoices;
use cms::signed_data::{SignerIdentifier, SignerInfo};
use der::asn1::{ObjectIdentifier, OctetString, SetOfVec};
use der::{Decode as _, Encode as _};
use x509_cert::Certificate;
use x509_cert::ext::pkix::{BasicConstraints, ExtendedKeyUsage, SubjectKeyIdentifier};
use x509_cert::spki::AlgorithmIdentifierOwned;

use super::asn1::{
    CONTENT_TYPE_ATTR, EC_PUBLIC_KEY, ECDSA_SHA256, ECDSA_SHA384, ECDSA_SHA512,
    MESSAGE_DIGEST_ATTR, SHA256, SHA384, SHA512, TIME_STAMPING, TST_INFO,
};
use super::{Token, hash, hash_name};

/// Longest chain followed from the TSA certificate to a trusted CA.
const MAX_CHAIN: usize = 8;

/// Why a token does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// The token is malformed.
    #[error("malformed timestamp token: {0}")]
    Malformed(String),
    /// The token stamps something other than the signature.
    #[error("the timestamp's message imprint is not the {0} of the image signature")]
    ImprintMismatch(String),
    /// The token's signer cannot be found or is ambiguous.
    #[error("timestamp signer: {0}")]
    Signer(String),
    /// The signed attributes are wrong.
    #[error("timestamp signed attributes: {0}")]
    SignedAttributes(String),
    /// An algorithm fwsign does not check.
    #[error("timestamp: {0} is not supported (ECDSA P-256 with SHA-256/384/512)")]
    Unsupported(String),
    /// The TSA's signature does not verify.
    #[error("the TSA's signature over the timestamp does not verify")]
    BadSignature,
    /// The TSA certificate lacks the time-stamping usage.
    #[error("TSA certificate '{subject}': {reason}")]
    KeyUsage {
        /// The certificate's subject.
        subject: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// The chain to a trusted CA is broken.
    #[error("TSA certificate chain: {0}")]
    Chain(String),
}

/// A verified token.
#[derive(Debug, Clone)]
pub struct VerifiedTimestamp {
    /// The token.
    pub token: Token,
    /// The subject of the TSA certificate.
    pub tsa_subject: String,
}

/// Verifies `token_der` as a timestamp over `signature`, trusting the CAs in `anchors`.
///
/// # Errors
/// [`TokenError`] naming the failed check.
pub fn verify(
    token_der: &[u8],
    signature: &[u8],
    anchors: &[Certificate],
) -> Result<VerifiedTimestamp, TokenError> {
    let token = Token::decode(token_der).map_err(TokenError::Malformed)?;
    let imprint = &token.info.message_imprint;
    let algorithm = &imprint.hash_algorithm.oid;
    let name = hash_name(algorithm)
        .ok_or_else(|| TokenError::Unsupported(format!("imprint hash {algorithm}")))?;
    if hash(algorithm, signature).as_deref() != Some(imprint.hashed_message.as_bytes()) {
        return Err(TokenError::ImprintMismatch(name.to_uppercase()));
    }
    let signer_info = single_signer(&token)?;
    let certificates = token_certificates(&token);
    let signer = find_signer_certificate(&signer_info.sid, &certificates)?;
    check_signed_attributes(signer_info, &token.content)?;
    check_tsa_signature(signer_info, signer)?;
    check_time_stamping_usage(signer)?;
    check_chain(signer, &certificates, anchors, token.gen_time)?;
    Ok(VerifiedTimestamp { tsa_subject: signer.tbs_certificate().subject().to_string(), token })
}

/// The subject of the certificate that signed the token, if the token carries it.
pub fn signer_subject(token: &Token) -> Option<String> {
    let signer_info = single_signer(token).ok()?;
    let certificates = token_certificates(token);
    let certificate = find_signer_certificate(&signer_info.sid, &certificates).ok()?;
    Some(certificate.tbs_certificate().subject().to_string())
}

fn single_signer(token: &Token) -> Result<&SignerInfo, TokenError> {
    let infos = token.signed_data.signer_infos.0.as_slice();
    match infos {
        [info] => Ok(info),
        _ => Err(TokenError::Signer(format!("expected one SignerInfo, found {}", infos.len()))),
    }
}

fn token_certificates(token: &Token) -> Vec<Certificate> {
    token
        .signed_data
        .certificates
        .iter()
        .flat_map(|set| set.0.iter())
        .filter_map(|choice| match choice {
            CertificateChoices::Certificate(cert) => Some(cert.clone()),
            CertificateChoices::Other(_) => None,
        })
        .collect()
}

fn find_signer_certificate<'a>(
    sid: &SignerIdentifier,
    certificates: &'a [Certificate],
) -> Result<&'a Certificate, TokenError> {
    let matches = |cert: &&Certificate| {
        let tbs = cert.tbs_certificate();
        match sid {
            SignerIdentifier::IssuerAndSerialNumber(id) => {
                tbs.issuer() == &id.issuer && tbs.serial_number() == &id.serial_number
            }
            SignerIdentifier::SubjectKeyIdentifier(id) => tbs
                .get_extension::<SubjectKeyIdentifier>()
                .ok()
                .flatten()
                .is_some_and(|(_, ski)| ski == *id),
        }
    };
    certificates.iter().find(matches).ok_or_else(|| {
        TokenError::Signer(
            "the token does not include the TSA certificate (request it with certReq)".into(),
        )
    })
}

/// The single value of signed attribute `oid`.
fn attribute_value(
    signer_info: &SignerInfo,
    oid: ObjectIdentifier,
) -> Result<&der::asn1::Any, TokenError> {
    let attributes = signer_info
        .signed_attrs
        .as_ref()
        .ok_or_else(|| TokenError::SignedAttributes("none present".into()))?;
    let mut found = attributes.iter().filter(|a| a.oid == oid);
    match (found.next(), found.next()) {
        (Some(attribute), None) if attribute.values.len() == 1 => attribute
            .values
            .get(0)
            .ok_or_else(|| TokenError::SignedAttributes(format!("{oid} has no value"))),
        _ => {
            Err(TokenError::SignedAttributes(format!("expected exactly one {oid} with one value")))
        }
    }
}

fn check_signed_attributes(signer_info: &SignerInfo, content: &[u8]) -> Result<(), TokenError> {
    let content_type = attribute_value(signer_info, CONTENT_TYPE_ATTR)?
        .decode_as::<ObjectIdentifier>()
        .map_err(|e| TokenError::SignedAttributes(format!("content type: {e}")))?;
    if content_type != TST_INFO {
        return Err(TokenError::SignedAttributes(format!(
            "content type {content_type} is not TSTInfo"
        )));
    }
    let digest = attribute_value(signer_info, MESSAGE_DIGEST_ATTR)?
        .decode_as::<OctetString>()
        .map_err(|e| TokenError::SignedAttributes(format!("message digest: {e}")))?;
    let algorithm = &signer_info.digest_alg.oid;
    let expected = hash(algorithm, content)
        .ok_or_else(|| TokenError::Unsupported(format!("digest algorithm {algorithm}")))?;
    if digest.as_bytes() != expected {
        return Err(TokenError::SignedAttributes(
            "the message digest does not match the TSTInfo".into(),
        ));
    }
    Ok(())
}

/// The hash an ECDSA signature algorithm (or the SignerInfo's digest algorithm) implies.
fn ecdsa_hash(
    signature_algorithm: &AlgorithmIdentifierOwned,
    digest_algorithm: &ObjectIdentifier,
) -> Result<ObjectIdentifier, TokenError> {
    match signature_algorithm.oid {
        ECDSA_SHA256 => Ok(SHA256),
        ECDSA_SHA384 => Ok(SHA384),
        ECDSA_SHA512 => Ok(SHA512),
        EC_PUBLIC_KEY => Ok(*digest_algorithm),
        other => Err(TokenError::Unsupported(format!("signature algorithm {other}"))),
    }
}

/// Whether `signature` (DER ECDSA) over `message` verifies with the P-256 key in `spki`.
fn ecdsa_verifies(
    certificate: &Certificate,
    hash_oid: &ObjectIdentifier,
    message: &[u8],
    signature: &[u8],
) -> Result<bool, TokenError> {
    use p256::ecdsa::signature::hazmat::PrehashVerifier as _;
    let spki = certificate
        .tbs_certificate()
        .subject_public_key_info()
        .to_der()
        .map_err(|e| TokenError::Malformed(e.to_string()))?;
    let Some(verifier_core::PublicKey::P256(point)) =
        verifier_core::PublicKey::from_spki_der(&spki)
    else {
        return Err(TokenError::Unsupported(format!(
            "the key of '{}'",
            certificate.tbs_certificate().subject()
        )));
    };
    let digest = hash(hash_oid, message)
        .ok_or_else(|| TokenError::Unsupported(format!("hash {hash_oid}")))?;
    let (Ok(key), Ok(signature)) = (
        p256::ecdsa::VerifyingKey::from_sec1_bytes(&point),
        p256::ecdsa::Signature::from_der(signature),
    ) else {
        return Ok(false);
    };
    Ok(key.verify_prehash(&digest, &signature).is_ok())
}

fn check_tsa_signature(signer_info: &SignerInfo, signer: &Certificate) -> Result<(), TokenError> {
    let attributes = signer_info
        .signed_attrs
        .as_ref()
        .ok_or_else(|| TokenError::SignedAttributes("none present".into()))?;
    // The signature covers the attributes' DER with the SET OF tag, not the [0] of the field.
    let signed: SetOfVec<_> = attributes.clone();
    let message = signed.to_der().map_err(|e| TokenError::Malformed(e.to_string()))?;
    let hash_oid = ecdsa_hash(&signer_info.signature_algorithm, &signer_info.digest_alg.oid)?;
    if ecdsa_verifies(signer, &hash_oid, &message, signer_info.signature.as_bytes())? {
        Ok(())
    } else {
        Err(TokenError::BadSignature)
    }
}

fn check_time_stamping_usage(certificate: &Certificate) -> Result<(), TokenError> {
    let subject = certificate.tbs_certificate().subject().to_string();
    let usage = |reason| TokenError::KeyUsage { subject: subject.clone(), reason };
    let extension = certificate
        .tbs_certificate()
        .get_extension::<ExtendedKeyUsage>()
        .map_err(|_| usage("malformed extended key usage"))?;
    match extension {
        None => Err(usage("no extended key usage; a TSA needs timeStamping")),
        Some((_, usages)) if usages.0 != [TIME_STAMPING] => {
            Err(usage("extended key usage is not timeStamping alone"))
        }
        Some((false, _)) => Err(usage("the timeStamping extended key usage is not critical")),
        Some((true, _)) => Ok(()),
    }
}

fn valid_at(certificate: &Certificate, time: u64) -> bool {
    let validity = certificate.tbs_certificate().validity();
    let not_before = validity.not_before.to_unix_duration().as_secs();
    let not_after = validity.not_after.to_unix_duration().as_secs();
    (not_before..=not_after).contains(&time)
}

fn is_ca(certificate: &Certificate) -> bool {
    certificate
        .tbs_certificate()
        .get_extension::<BasicConstraints>()
        .ok()
        .flatten()
        .is_some_and(|(_, constraints)| constraints.ca)
}

/// Whether `issuer` signed `certificate`.
fn signed_by(certificate: &Certificate, issuer: &Certificate) -> Result<bool, TokenError> {
    if certificate.tbs_certificate().issuer() != issuer.tbs_certificate().subject() {
        return Ok(false);
    }
    let tbs =
        certificate.tbs_certificate().to_der().map_err(|e| TokenError::Malformed(e.to_string()))?;
    let hash_oid = ecdsa_hash(certificate.signature_algorithm(), &SHA256)?;
    let Some(signature) = certificate.signature().as_bytes() else {
        return Ok(false);
    };
    ecdsa_verifies(issuer, &hash_oid, &tbs, signature)
}

fn check_chain(
    signer: &Certificate,
    intermediates: &[Certificate],
    anchors: &[Certificate],
    gen_time: u64,
) -> Result<(), TokenError> {
    let mut current = signer;
    for _ in 0..MAX_CHAIN {
        let subject = current.tbs_certificate().subject().to_string();
        if !valid_at(current, gen_time) {
            return Err(TokenError::Chain(format!(
                "'{subject}' was not valid at the token's time"
            )));
        }
        if anchors.contains(current) {
            return Ok(());
        }
        for anchor in anchors {
            if signed_by(current, anchor)? {
                if !is_ca(anchor) || !valid_at(anchor, gen_time) {
                    return Err(TokenError::Chain(format!(
                        "trusted certificate '{}' is not a CA valid at the token's time",
                        anchor.tbs_certificate().subject()
                    )));
                }
                return Ok(());
            }
        }
        let mut issuer = None;
        for candidate in intermediates.iter().filter(|c| *c != current) {
            if is_ca(candidate) && signed_by(current, candidate)? {
                issuer = Some(candidate);
                break;
            }
        }
        current = issuer.ok_or_else(|| {
            TokenError::Chain(format!(
                "'{subject}' (issued by '{}') does not lead to a certificate of --tsa-ca",
                current.tbs_certificate().issuer()
            ))
        })?;
    }
    Err(TokenError::Chain(format!("longer than {MAX_CHAIN} certificates")))
}

/// Reads trusted CA certificates: PEM (one or more) or a single DER certificate.
///
/// # Errors
/// A message when the bytes hold no certificate.
pub fn read_anchors(bytes: &[u8]) -> Result<Vec<Certificate>, String> {
    if bytes.starts_with(b"-----") || bytes.iter().take(64).all(u8::is_ascii) {
        let certificates =
            Certificate::load_pem_chain(bytes).map_err(|e| format!("not PEM certificates: {e}"))?;
        if certificates.is_empty() {
            return Err("no certificate found".into());
        }
        return Ok(certificates);
    }
    Certificate::from_der(bytes)
        .map(|certificate| vec![certificate])
        .map_err(|e| format!("not a DER certificate: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A self-signed P-256 certificate with `extension`, made by openssl.
    fn certificate(extension: &str) -> Certificate {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut command = std::process::Command::new(fwsign_tests::openssl());
        command.current_dir(dir.path()).args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "k.pem",
            "-out",
            "c.pem",
            "-subj",
            "/CN=usage test",
            "-addext",
            extension,
        ]);
        fwsign_tests::run_checked(&mut command);
        let pem = std::fs::read(dir.path().join("c.pem")).expect("certificate");
        read_anchors(&pem).expect("parses").remove(0)
    }

    #[test]
    fn the_tsa_usage_must_be_critical_and_alone() {
        let refused = [
            ("extendedKeyUsage=timeStamping", "not critical"),
            ("extendedKeyUsage=critical,timeStamping,codeSigning", "not timeStamping alone"),
            ("keyUsage=critical,digitalSignature", "no extended key usage"),
        ];
        for (extension, expected) in refused {
            let error = check_time_stamping_usage(&certificate(extension))
                .expect_err(extension)
                .to_string();
            assert!(error.contains(expected), "{extension}: {error}");
        }
        check_time_stamping_usage(&certificate("extendedKeyUsage=critical,timeStamping"))
            .expect("a proper TSA certificate");
    }
}
