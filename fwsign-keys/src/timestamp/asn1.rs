//! The RFC 3161 structures, declared with `der`'s derive so that decoding is the crate's.
//!
//! `cms` and `x509-cert` supply CMS SignedData, certificates and names; what remains here
//! are the four time-stamp protocol types and the ESS attribute RFC 5816 requires.

use der::asn1::{Any, BitString, ObjectIdentifier, OctetString, Uint};
use der::{Enumerated, Sequence};
use x509_cert::ext::Extensions;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::spki::AlgorithmIdentifierOwned;

/// `id-ct-TSTInfo`: the content type of a time-stamp token's signed content.
pub const TST_INFO: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.1.4");
/// `id-signedData`.
pub const SIGNED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.2");
/// `id-sha256`.
pub const SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");
/// `id-sha384`.
pub const SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.2");
/// `id-sha512`.
pub const SHA512: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.3");
/// `ecdsa-with-SHA256`.
pub const ECDSA_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
/// `ecdsa-with-SHA384`.
pub const ECDSA_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.3");
/// `ecdsa-with-SHA512`.
pub const ECDSA_SHA512: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.4");
/// `id-ecPublicKey`, which some signers put where the signature algorithm belongs.
pub const EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
/// `id-contentType` signed attribute.
pub const CONTENT_TYPE_ATTR: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.3");
/// `id-messageDigest` signed attribute.
pub const MESSAGE_DIGEST_ATTR: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.4");
/// `id-kp-timeStamping` extended key usage.
pub const TIME_STAMPING: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.8");

/// `MessageImprint`: the hash of the stamped data.
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct MessageImprint {
    /// The hash algorithm.
    pub hash_algorithm: AlgorithmIdentifierOwned,
    /// The hash.
    pub hashed_message: OctetString,
}

/// `TimeStampReq` (RFC 3161 §2.4.1).
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct TimeStampReq {
    /// Always 1.
    pub version: u8,
    /// What to stamp.
    pub message_imprint: MessageImprint,
    /// The TSA policy asked for.
    #[asn1(optional = "true")]
    pub req_policy: Option<ObjectIdentifier>,
    /// A random number the reply must echo.
    #[asn1(optional = "true")]
    pub nonce: Option<Uint>,
    /// Ask the TSA to include its certificate.
    #[asn1(default = "Default::default")]
    pub cert_req: bool,
}

/// `PKIStatus`.
#[derive(Clone, Copy, Debug, Eq, PartialEq, Enumerated)]
#[asn1(type = "INTEGER")]
#[repr(u8)]
pub enum PkiStatus {
    /// Granted.
    Granted = 0,
    /// Granted with modifications.
    GrantedWithMods = 1,
    /// Rejected.
    Rejection = 2,
    /// Not yet: ask again later.
    Waiting = 3,
    /// A revocation is imminent.
    RevocationWarning = 4,
    /// Revoked.
    RevocationNotification = 5,
}

/// `PKIStatusInfo`.
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct PkiStatusInfo {
    /// The status.
    pub status: PkiStatus,
    /// Free text from the TSA.
    #[asn1(optional = "true")]
    pub status_string: Option<Vec<String>>,
    /// Why it failed.
    #[asn1(optional = "true")]
    pub fail_info: Option<BitString>,
}

/// `TimeStampResp`.
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct TimeStampResp {
    /// The outcome.
    pub status: PkiStatusInfo,
    /// The token (a CMS `ContentInfo`), when granted.
    #[asn1(optional = "true")]
    pub time_stamp_token: Option<Any>,
}

/// `TSTInfo` (RFC 3161 §2.4.2): what the TSA signs.
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct TstInfo {
    /// Always 1.
    pub version: u8,
    /// The TSA policy the stamp was made under.
    pub policy: ObjectIdentifier,
    /// The hash of the stamped data.
    pub message_imprint: MessageImprint,
    /// Unique per token.
    pub serial_number: Uint,
    /// When the stamp was made (GeneralizedTime, possibly with a fraction; parsed by
    /// [`super::gen_time_seconds`]).
    pub gen_time: Any,
    /// The TSA's accuracy claim.
    #[asn1(optional = "true")]
    pub accuracy: Option<Any>,
    /// Whether tokens of this TSA are ordered by genTime.
    #[asn1(default = "Default::default")]
    pub ordering: bool,
    /// The request's nonce.
    #[asn1(optional = "true")]
    pub nonce: Option<Uint>,
    /// The TSA's name.
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    pub tsa: Option<GeneralName>,
    /// Extensions.
    #[asn1(context_specific = "1", tag_mode = "IMPLICIT", optional = "true")]
    pub extensions: Option<Extensions>,
}
