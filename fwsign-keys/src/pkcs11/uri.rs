//! RFC 7512 `pkcs11:` URIs: how a key in a token is named on the command line.
//!
//! A URI has path attributes that select the token and the object
//! (`pkcs11:token=fw-signing;object=release;id=%01;type=private`) and query attributes that
//! say how to reach it (`?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/run/pin`).
//! Values are percent-decoded; `id` is binary and usually written `%01%02…`.
//!
//! The PIN is never taken from the command line: `pin-value` is refused, so it cannot end up
//! in shell history or a process listing. It comes from `pin-source` or the environment
//! (see [`super`]).
//!
//! Unknown attributes are refused rather than ignored: a misspelt `tokn=` would otherwise
//! widen the selection to another token's key.

use std::fmt;
use std::path::PathBuf;

/// The `type` path attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectType {
    /// A private key.
    Private,
    /// A public key.
    Public,
    /// A certificate.
    Cert,
    /// A secret key.
    SecretKey,
    /// A data object.
    Data,
}

/// Why a `pkcs11:` URI could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UriError {
    /// The text does not start with `pkcs11:`.
    #[error("'{0}' is not a PKCS#11 URI (expected pkcs11:token=…;object=…)")]
    NotPkcs11(String),
    /// An attribute is not `name=value`.
    #[error("PKCS#11 URI attribute '{0}' is not of the form name=value")]
    Malformed(String),
    /// An attribute is not one fwsign knows.
    #[error(
        "PKCS#11 URI attribute '{0}' is not supported (path: token, object, id, type, slot-id, serial, manufacturer, model; query: module-path, pin-source)"
    )]
    Unknown(String),
    /// An attribute appears twice.
    #[error("PKCS#11 URI attribute '{0}' is given twice")]
    Duplicate(String),
    /// A percent escape is broken.
    #[error("PKCS#11 URI attribute '{name}': bad percent escape in '{value}'")]
    BadEscape {
        /// The attribute.
        name: String,
        /// Its raw value.
        value: String,
    },
    /// A value is not valid for its attribute.
    #[error("PKCS#11 URI attribute '{name}={value}': {expected}")]
    BadValue {
        /// The attribute.
        name: String,
        /// Its raw value.
        value: String,
        /// What was expected.
        expected: &'static str,
    },
    /// `pin-value` was given.
    #[error(
        "PKCS#11 URI: pin-value would put the PIN on the command line; use pin-source=file:PATH or the environment variable FWSIGN_PKCS11_PIN"
    )]
    PinValue,
}

/// A parsed `pkcs11:` URI.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pkcs11Uri {
    /// Token label.
    pub token: Option<String>,
    /// Token serial number.
    pub serial: Option<String>,
    /// Token manufacturer.
    pub manufacturer: Option<String>,
    /// Token model.
    pub model: Option<String>,
    /// Slot identifier.
    pub slot_id: Option<u64>,
    /// Object label (`CKA_LABEL`).
    pub object: Option<String>,
    /// Object identifier (`CKA_ID`), binary.
    pub id: Option<Vec<u8>>,
    /// Object class.
    pub object_type: Option<ObjectType>,
    /// The PKCS#11 module to load.
    pub module_path: Option<PathBuf>,
    /// Where the PIN is: `file:PATH`, `file:///PATH` or a plain path.
    pub pin_source: Option<String>,
}

impl Pkcs11Uri {
    /// Whether `text` is meant as a PKCS#11 URI rather than a file name.
    pub fn is_uri(text: &str) -> bool {
        text.get(..7).is_some_and(|scheme| scheme.eq_ignore_ascii_case("pkcs11:"))
    }

    /// Parses a URI.
    ///
    /// # Errors
    /// [`UriError`] naming the offending attribute.
    pub fn parse(text: &str) -> Result<Self, UriError> {
        if !Self::is_uri(text) {
            return Err(UriError::NotPkcs11(text.to_owned()));
        }
        let rest = &text[7..];
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        let mut uri = Self::default();
        let path_attributes = path.split(';').filter(|a| !a.is_empty());
        for attribute in path_attributes {
            uri.set_path(attribute)?;
        }
        for attribute in query.split('&').filter(|a| !a.is_empty()) {
            uri.set_query(attribute)?;
        }
        Ok(uri)
    }

    fn set_path(&mut self, attribute: &str) -> Result<(), UriError> {
        let (name, raw) = split(attribute)?;
        let bytes = decode(name, raw)?;
        let text = || text_value(name, raw, &bytes);
        match name {
            "token" => set(&mut self.token, name, text()?),
            "serial" => set(&mut self.serial, name, text()?),
            "manufacturer" => set(&mut self.manufacturer, name, text()?),
            "model" => set(&mut self.model, name, text()?),
            "object" => set(&mut self.object, name, text()?),
            "id" => set(&mut self.id, name, bytes),
            "slot-id" => {
                let id = text()?.parse().map_err(|_| UriError::BadValue {
                    name: name.into(),
                    value: raw.into(),
                    expected: "expected a decimal slot number",
                })?;
                set(&mut self.slot_id, name, id)
            }
            "type" => {
                let kind = match text()?.as_str() {
                    "private" => ObjectType::Private,
                    "public" => ObjectType::Public,
                    "cert" => ObjectType::Cert,
                    "secret-key" => ObjectType::SecretKey,
                    "data" => ObjectType::Data,
                    _ => {
                        return Err(UriError::BadValue {
                            name: name.into(),
                            value: raw.into(),
                            expected: "expected private, public, cert, secret-key or data",
                        });
                    }
                };
                set(&mut self.object_type, name, kind)
            }
            _ => Err(UriError::Unknown(name.into())),
        }
    }

    fn set_query(&mut self, attribute: &str) -> Result<(), UriError> {
        let (name, raw) = split(attribute)?;
        let bytes = decode(name, raw)?;
        match name {
            "module-path" => {
                set(&mut self.module_path, name, PathBuf::from(text_value(name, raw, &bytes)?))
            }
            "pin-source" => set(&mut self.pin_source, name, text_value(name, raw, &bytes)?),
            "pin-value" => Err(UriError::PinValue),
            _ => Err(UriError::Unknown(name.into())),
        }
    }
}

impl std::str::FromStr for Pkcs11Uri {
    type Err = UriError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text)
    }
}

/// Formats the URI back, path attributes only (no module or PIN source): the key's name.
impl fmt::Display for Pkcs11Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts: Vec<String> = Vec::new();
        let texts = [
            ("token", &self.token),
            ("manufacturer", &self.manufacturer),
            ("model", &self.model),
            ("serial", &self.serial),
            ("object", &self.object),
        ];
        for (name, value) in texts {
            if let Some(value) = value {
                parts.push(format!("{name}={}", encode(value.as_bytes(), false)));
            }
        }
        if let Some(slot) = self.slot_id {
            parts.push(format!("slot-id={slot}"));
        }
        if let Some(id) = &self.id {
            parts.push(format!("id={}", encode(id, true)));
        }
        if let Some(kind) = self.object_type {
            let name = match kind {
                ObjectType::Private => "private",
                ObjectType::Public => "public",
                ObjectType::Cert => "cert",
                ObjectType::SecretKey => "secret-key",
                ObjectType::Data => "data",
            };
            parts.push(format!("type={name}"));
        }
        write!(f, "pkcs11:{}", parts.join(";"))
    }
}

fn split(attribute: &str) -> Result<(&str, &str), UriError> {
    attribute.split_once('=').ok_or_else(|| UriError::Malformed(attribute.to_owned()))
}

fn set<T>(slot: &mut Option<T>, name: &str, value: T) -> Result<(), UriError> {
    if slot.is_some() {
        return Err(UriError::Duplicate(name.to_owned()));
    }
    *slot = Some(value);
    Ok(())
}

fn text_value(name: &str, raw: &str, bytes: &[u8]) -> Result<String, UriError> {
    String::from_utf8(bytes.to_vec()).map_err(|_| UriError::BadValue {
        name: name.into(),
        value: raw.into(),
        expected: "expected UTF-8 text",
    })
}

/// Percent-decodes an attribute value.
fn decode(name: &str, raw: &str) -> Result<Vec<u8>, UriError> {
    let bad = || UriError::BadEscape { name: name.into(), value: raw.into() };
    let mut out = Vec::with_capacity(raw.len());
    let mut bytes = raw.bytes();
    while let Some(byte) = bytes.next() {
        if byte != b'%' {
            out.push(byte);
            continue;
        }
        let high = bytes.next().and_then(hex_digit).ok_or_else(bad)?;
        let low = bytes.next().and_then(hex_digit).ok_or_else(bad)?;
        out.push(high << 4 | low);
    }
    Ok(out)
}

fn hex_digit(byte: u8) -> Option<u8> {
    char::from(byte).to_digit(16).and_then(|d| u8::try_from(d).ok())
}

/// Percent-encodes a value; `all` escapes every byte (the usual form of `id`).
fn encode(bytes: &[u8], all: bool) -> String {
    bytes
        .iter()
        .map(|&b| {
            let unreserved = b.is_ascii_alphanumeric() || b"-._~".contains(&b);
            if unreserved && !all { char::from(b).to_string() } else { format!("%{b:02X}") }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_path_and_query() {
        let uri = Pkcs11Uri::parse(
            "pkcs11:token=fw%20signing;object=release;id=%01%a2;type=private;slot-id=7;serial=42\
             ?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/run/pin",
        )
        .expect("valid");
        assert_eq!(uri.token.as_deref(), Some("fw signing"));
        assert_eq!(uri.object.as_deref(), Some("release"));
        assert_eq!(uri.id.as_deref(), Some(&[0x01, 0xa2][..]));
        assert_eq!(uri.object_type, Some(ObjectType::Private));
        assert_eq!(uri.slot_id, Some(7));
        assert_eq!(uri.serial.as_deref(), Some("42"));
        assert_eq!(uri.module_path, Some(PathBuf::from("/usr/lib/softhsm/libsofthsm2.so")));
        assert_eq!(uri.pin_source.as_deref(), Some("file:/run/pin"));
        assert_eq!(
            uri.to_string(),
            "pkcs11:token=fw%20signing;serial=42;object=release;slot-id=7;id=%01%A2;type=private"
        );
    }

    #[test]
    fn refuses_what_it_cannot_honour() {
        assert_eq!(Pkcs11Uri::parse("pkcs11:tokn=x"), Err(UriError::Unknown("tokn".into())));
        assert_eq!(
            Pkcs11Uri::parse("pkcs11:token=a;token=b"),
            Err(UriError::Duplicate("token".into()))
        );
        assert_eq!(Pkcs11Uri::parse("pkcs11:token=a?pin-value=1234"), Err(UriError::PinValue));
        assert!(matches!(Pkcs11Uri::parse("pkcs11:id=%0"), Err(UriError::BadEscape { .. })));
        assert!(matches!(Pkcs11Uri::parse("pkcs11:type=key"), Err(UriError::BadValue { .. })));
        assert!(matches!(Pkcs11Uri::parse("key.pem"), Err(UriError::NotPkcs11(_))));
        assert!(Pkcs11Uri::is_uri("PKCS11:token=a"));
    }
}
