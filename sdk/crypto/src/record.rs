//! The record model: an electronic medical record is an ordered list of sections, each a FHIR R4
//! resource (JSON) or a binary attachment such as a DICOM image.
//!
//! Sections are the unit of everything else in this crate: each gets its own data key
//! ([`crate::envelope`]), its own leaf in the content extraction signature ([`crate::ces`]), and
//! can be shared on its own. Identifiers are bounded and printable so that they can be bound
//! unambiguously (length-prefixed) into ciphertext AAD and signed messages.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::Error;

/// Longest record id, section id, author or owner pseudonym, in bytes.
pub const MAX_ID_LEN: usize = 255;
/// Longest attachment media type, in bytes (RFC 6838 allows 127 + `/` + 127).
pub const MAX_MEDIA_TYPE_LEN: usize = 255;
/// Most sections one record may have (the CES tree is built over them).
pub const MAX_SECTIONS: usize = 4096;

/// Media type used for FHIR R4 JSON sections (FHIR R4 §3.1.0.1.10 "fhirVersion" parameter).
pub const FHIR_R4_JSON_MEDIA_TYPE: &str = "application/fhir+json; fhirVersion=4.0";

/// Checks an identifier: 1..=[`MAX_ID_LEN`] bytes of printable ASCII (no spaces or controls), so
/// that it is unambiguous in logs, ledger keys and length-prefixed encodings alike.
fn validate_id(id: &str, what: &'static str) -> Result<(), Error> {
    let ok = !id.is_empty() && id.len() <= MAX_ID_LEN && id.bytes().all(|b| b.is_ascii_graphic());
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidInput(what))
    }
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Validates and wraps an identifier (1 to [`MAX_ID_LEN`] bytes of printable ASCII,
            /// no spaces).
            pub fn new(id: impl Into<String>) -> Result<Self, Error> {
                let id = id.into();
                validate_id(&id, $what)?;
                Ok(Self(id))
            }

            /// The identifier as a string.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = Error;
            fn try_from(id: String) -> Result<Self, Error> {
                Self::new(id)
            }
        }

        impl std::str::FromStr for $name {
            type Err = Error;
            fn from_str(id: &str) -> Result<Self, Error> {
                Self::new(id)
            }
        }

        // Deserialisation validates too: an invalid id never exists as a value.
        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::new(s).map_err(serde::de::Error::custom)
            }
        }
    };
}

id_type!(
    /// Identifier of a record, unique within the consortium (e.g. a UUID).
    RecordId,
    "record id"
);
id_type!(
    /// Identifier of a section, unique within its record (e.g. `encounter`, `ct-scan-1`).
    SectionId,
    "section id"
);
id_type!(
    /// A pseudonym: the name a user acts under (the subject of a pseudonym certificate), never
    /// the real identity.
    Pseudonym,
    "pseudonym"
);

/// What a section's bytes are.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ContentType {
    /// A FHIR R4 resource in its JSON representation.
    FhirR4Json,
    /// A binary attachment with its media type, e.g. `application/dicom` or `application/pdf`.
    Attachment {
        /// RFC 6838 media type (`type/subtype`, printable ASCII).
        media_type: String,
    },
}

impl ContentType {
    /// An attachment of the given media type (`type/subtype`, printable ASCII, at most
    /// [`MAX_MEDIA_TYPE_LEN`] bytes).
    pub fn attachment(media_type: impl Into<String>) -> Result<Self, Error> {
        let media_type = media_type.into();
        let ok = media_type.len() <= MAX_MEDIA_TYPE_LEN
            && media_type.bytes().all(|b| (0x20..0x7f).contains(&b))
            && media_type
                .split_once('/')
                .is_some_and(|(t, s)| !t.is_empty() && !s.is_empty());
        if ok {
            Ok(Self::Attachment { media_type })
        } else {
            Err(Error::InvalidInput("media type"))
        }
    }

    /// The media type: [`FHIR_R4_JSON_MEDIA_TYPE`] for FHIR sections. This is the string that
    /// content extraction signatures bind, so relabelling a section breaks its signature.
    pub fn media_type(&self) -> &str {
        match self {
            Self::FhirR4Json => FHIR_R4_JSON_MEDIA_TYPE,
            Self::Attachment { media_type } => media_type,
        }
    }

    /// Parses a media type as produced by [`ContentType::media_type`].
    pub fn from_media_type(media_type: &str) -> Result<Self, Error> {
        if media_type == FHIR_R4_JSON_MEDIA_TYPE {
            Ok(Self::FhirR4Json)
        } else {
            Self::attachment(media_type)
        }
    }
}

impl<'de> Deserialize<'de> for ContentType {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(tag = "kind", rename_all = "snake_case")]
        enum Raw {
            FhirR4Json,
            Attachment { media_type: String },
        }
        match Raw::deserialize(d)? {
            Raw::FhirR4Json => Ok(Self::FhirR4Json),
            Raw::Attachment { media_type } => {
                Self::attachment(media_type).map_err(serde::de::Error::custom)
            }
        }
    }
}

/// One section of a record: its id, what it is, and its plaintext bytes.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Section {
    /// Unique within the record.
    pub id: SectionId,
    /// FHIR resource or attachment.
    pub content_type: ContentType,
    /// The plaintext. Base64 in human-readable formats (JSON), raw bytes otherwise.
    #[serde(with = "bytes_serde")]
    pub bytes: Vec<u8>,
}

// Plaintext is medical data: Debug shows only its length.
impl fmt::Debug for Section {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Section")
            .field("id", &self.id)
            .field("content_type", &self.content_type)
            .field("len", &self.bytes.len())
            .finish()
    }
}

impl Section {
    /// A FHIR R4 JSON section. The JSON is not parsed here; FHIR validation belongs to the
    /// producer.
    pub fn fhir(id: SectionId, json: impl Into<Vec<u8>>) -> Self {
        Self {
            id,
            content_type: ContentType::FhirR4Json,
            bytes: json.into(),
        }
    }

    /// An attachment section.
    pub fn attachment(
        id: SectionId,
        media_type: &str,
        bytes: impl Into<Vec<u8>>,
    ) -> Result<Self, Error> {
        Ok(Self {
            id,
            content_type: ContentType::attachment(media_type)?,
            bytes: bytes.into(),
        })
    }
}

/// A versioned medical record: who wrote it, whose it is, and its sections in order.
///
/// Each new version is a new record value with a higher `version`; ciphertexts and signatures are
/// bound to (id, version), so nothing from one version can be passed off as another.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Record {
    /// Record identifier.
    pub id: RecordId,
    /// Version, increasing with every amendment.
    pub version: u64,
    /// Pseudonym of the author (the signing clinician).
    pub author: Pseudonym,
    /// Pseudonym of the owner (the patient).
    pub owner: Pseudonym,
    /// Sections in order; ids unique, at least one, at most [`MAX_SECTIONS`].
    sections: Vec<Section>,
}

impl Record {
    /// Builds a record after checking its sections: 1 to [`MAX_SECTIONS`], ids unique.
    pub fn new(
        id: RecordId,
        version: u64,
        author: Pseudonym,
        owner: Pseudonym,
        sections: Vec<Section>,
    ) -> Result<Self, Error> {
        validate_sections(&sections)?;
        Ok(Self {
            id,
            version,
            author,
            owner,
            sections,
        })
    }

    /// The sections, in order.
    pub fn sections(&self) -> &[Section] {
        &self.sections
    }

    /// Takes the sections out of the record.
    pub fn into_sections(self) -> Vec<Section> {
        self.sections
    }

    /// The section with this id, if any.
    pub fn section(&self, id: &str) -> Option<&Section> {
        self.sections.iter().find(|s| s.id.as_str() == id)
    }

    /// The position of the section with this id (its CES leaf index).
    pub fn section_index(&self, id: &str) -> Option<u32> {
        self.sections
            .iter()
            .position(|s| s.id.as_str() == id)
            .and_then(|i| u32::try_from(i).ok())
    }
}

fn validate_sections(sections: &[Section]) -> Result<(), Error> {
    if sections.is_empty() || sections.len() > MAX_SECTIONS {
        return Err(Error::InvalidInput("section count"));
    }
    let mut seen = BTreeSet::new();
    if !sections.iter().all(|s| seen.insert(s.id.as_str())) {
        return Err(Error::InvalidInput("duplicate section id"));
    }
    Ok(())
}

impl<'de> Deserialize<'de> for Record {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Raw {
            id: RecordId,
            version: u64,
            author: Pseudonym,
            owner: Pseudonym,
            sections: Vec<Section>,
        }
        let r = Raw::deserialize(d)?;
        Record::new(r.id, r.version, r.author, r.owner, r.sections)
            .map_err(serde::de::Error::custom)
    }
}

/// Section bytes as base64 (RFC 4648, padded) in human-readable formats, bytes otherwise.
mod bytes_serde {
    use base64ct::{Base64, Encoding};
    use serde::de::{self, Visitor};
    use serde::{Deserializer, Serializer};
    use std::fmt;

    pub(super) fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(&Base64::encode_string(bytes))
        } else {
            s.serialize_bytes(bytes)
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Vec<u8>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("base64 string or bytes")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Vec<u8>, E> {
                Base64::decode_vec(v).map_err(|_| E::custom("invalid base64"))
            }
            fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
                Ok(v.to_vec())
            }
            fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
                Ok(v)
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<u8>, A::Error> {
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1 << 16));
                while let Some(b) = seq.next_element::<u8>()? {
                    out.push(b);
                }
                Ok(out)
            }
        }
        if d.is_human_readable() {
            d.deserialize_str(V)
        } else {
            d.deserialize_byte_buf(V)
        }
    }
}
