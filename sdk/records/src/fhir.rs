//! FHIR R4 bundles to record sections: each bundle entry becomes one section.
//!
//! - The section id is `<resourceType>-<id>` from the entry's resource, or, when the resource
//!   has no id, `<resourceType>-<last segment of fullUrl>` (`urn:uuid:…` gives the UUID).
//!   Characters outside printable ASCII are replaced by `_`, ids are cut to 255 bytes, and a
//!   repeated id gets `-2`, `-3`, … appended.
//! - A FHIR resource section holds the resource's JSON **exactly as it appears in the bundle**
//!   (no re-serialisation), content type `application/fhir+json; fhirVersion=4.0`.
//! - A `Binary` resource with inline `data` becomes an attachment section: the decoded bytes,
//!   with the resource's `contentType` (e.g. `application/dicom`) as media type.
//!
//! Attachments that do not fit in a bundle (a DICOM series) are added as sections of their
//! own with [`attachment`].

use std::collections::BTreeSet;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use medfabric_crypto::record::{MAX_ID_LEN, Section, SectionId};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::error::{Error, Result};

/// Most sections one record may have (the contracts' limit).
pub const MAX_SECTIONS: usize = 64;

#[derive(Deserialize)]
struct Bundle<'a> {
    #[serde(rename = "resourceType")]
    resource_type: String,
    #[serde(default, borrow)]
    entry: Vec<Entry<'a>>,
}

#[derive(Deserialize)]
struct Entry<'a> {
    #[serde(rename = "fullUrl", default)]
    full_url: Option<String>,
    #[serde(borrow, default)]
    resource: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct Head {
    #[serde(rename = "resourceType")]
    resource_type: String,
    #[serde(default)]
    id: Option<String>,
    #[serde(rename = "contentType", default)]
    content_type: Option<String>,
    #[serde(default)]
    data: Option<String>,
}

fn sanitize(text: &str) -> String {
    let mut out: String = text
        .chars()
        .map(|c| if c.is_ascii_graphic() { c } else { '_' })
        .collect();
    out.truncate(MAX_ID_LEN);
    out
}

fn unique(id: String, seen: &mut BTreeSet<String>) -> String {
    if seen.insert(id.clone()) {
        return id;
    }
    for n in 2.. {
        let mut base = id.clone();
        let suffix = format!("-{n}");
        base.truncate(MAX_ID_LEN - suffix.len());
        let candidate = base + &suffix;
        if seen.insert(candidate.clone()) {
            return candidate;
        }
    }
    unreachable!("some suffix is free")
}

/// The sections of a FHIR R4 `Bundle` (JSON), in entry order.
///
/// # Errors
/// [`Error::Read`] when the bytes are not JSON; [`Error::Validate`] when they are not a
/// bundle with 1 to [`MAX_SECTIONS`] entries carrying resources.
pub fn sections_from_bundle(json: &[u8]) -> Result<Vec<Section>> {
    validate_r4(json)?;
    let bundle: Bundle<'_> =
        serde_json::from_slice(json).map_err(|e| Error::Read(format!("FHIR bundle: {e}")))?;
    if bundle.resource_type != "Bundle" {
        return Err(Error::Validate(format!(
            "expected a FHIR Bundle, got resourceType {:?}",
            bundle.resource_type
        )));
    }
    let mut seen = BTreeSet::new();
    let mut sections = Vec::new();
    for (n, entry) in bundle.entry.iter().enumerate() {
        let Some(raw) = entry.resource else {
            continue;
        };
        let head: Head = serde_json::from_str(raw.get())
            .map_err(|e| Error::Validate(format!("bundle entry {n}: {e}")))?;
        let local = head.id.clone().or_else(|| {
            entry
                .full_url
                .as_deref()
                .map(|u| u.rsplit([':', '/']).next().unwrap_or(u).to_owned())
        });
        let base = match local {
            Some(local) if !local.is_empty() => format!("{}-{local}", head.resource_type),
            _ => format!("{}-{n}", head.resource_type),
        };
        let id = SectionId::new(unique(sanitize(&base), &mut seen))
            .map_err(|e| Error::Validate(format!("bundle entry {n}: section id: {e}")))?;
        let section = match (&*head.resource_type, &head.data) {
            ("Binary", Some(data)) => {
                let bytes = BASE64
                    .decode(data.as_bytes())
                    .map_err(|e| Error::Validate(format!("bundle entry {n}: Binary.data: {e}")))?;
                let media = head
                    .content_type
                    .as_deref()
                    .unwrap_or("application/octet-stream");
                Section::attachment(id, media, bytes)
                    .map_err(|e| Error::Validate(format!("bundle entry {n}: {e}")))?
            }
            _ => Section::fhir(id, raw.get().as_bytes().to_vec()),
        };
        sections.push(section);
    }
    if sections.is_empty() {
        return Err(Error::Validate(
            "the bundle has no entry with a resource".into(),
        ));
    }
    if sections.len() > MAX_SECTIONS {
        return Err(Error::Validate(format!(
            "the bundle has {} resources; a record holds at most {MAX_SECTIONS} sections (split it into several records)",
            sections.len()
        )));
    }
    Ok(sections)
}

/// Most validation problems quoted in an error.
const MAX_ISSUES_SHOWN: usize = 5;

/// Checks `json` against the FHIR R4 model (every resource and datatype of the specification,
/// with `fhirkit`): unknown elements, wrong types, invalid codes and missing required elements
/// are refused, each named by its path.
///
/// # Errors
/// [`Error::Validate`] listing the first problems; [`Error::Read`] when it is not JSON.
pub fn validate_r4(json: &[u8]) -> Result<()> {
    let text = std::str::from_utf8(json)
        .map_err(|e| Error::Validate(format!("FHIR bundle: not UTF-8: {e}")))?;
    match fhirkit::from_json_strict::<fhirkit::r4::Bundle>(text) {
        Ok(_) => Ok(()),
        Err(fhirkit::Error::Json(e)) => Err(Error::Read(format!("FHIR bundle: {e}"))),
        Err(fhirkit::Error::Invalid(issues)) => {
            let shown: Vec<String> = issues
                .iter()
                .take(MAX_ISSUES_SHOWN)
                .map(ToString::to_string)
                .collect();
            let more = issues.len().saturating_sub(MAX_ISSUES_SHOWN);
            Err(Error::Validate(format!(
                "not a valid FHIR R4 Bundle ({} problem(s)): {}{}",
                issues.len(),
                shown.join("; "),
                if more > 0 {
                    format!("; and {more} more")
                } else {
                    String::new()
                }
            )))
        }
    }
}

/// An attachment section (e.g. a DICOM file).
///
/// # Errors
/// [`Error::Validate`] for a bad id or media type.
pub fn attachment(id: &str, media_type: &str, bytes: Vec<u8>) -> Result<Section> {
    let id = SectionId::new(id).map_err(|e| Error::Validate(format!("section id {id:?}: {e}")))?;
    Section::attachment(id, media_type, bytes)
        .map_err(|e| Error::Validate(format!("attachment {media_type:?}: {e}")))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn entries_become_sections_with_exact_bytes() {
        let json = br#"{"resourceType":"Bundle","type":"collection","entry":[
            {"fullUrl":"urn:uuid:1111","resource":{"resourceType":"Patient","id":"p1","name":[{"family":"Doe"}]}},
            {"fullUrl":"urn:uuid:2222","resource":{"resourceType":"Condition",  "code":{"text":"asthma"},"subject":{"reference":"Patient/p1"}}},
            {"resource":{"resourceType":"Binary","id":"img","contentType":"application/dicom","data":"RElDTQ=="}},
            {"resource":{"resourceType":"Patient","id":"p1"}}
        ]}"#;
        let sections = sections_from_bundle(json).unwrap();
        let ids: Vec<&str> = sections.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(
            ids,
            ["Patient-p1", "Condition-2222", "Binary-img", "Patient-p1-2"]
        );
        assert_eq!(
            sections[1].bytes,
            br#"{"resourceType":"Condition",  "code":{"text":"asthma"},"subject":{"reference":"Patient/p1"}}"#
        );
        assert_eq!(sections[2].bytes, b"DICM");
        assert_eq!(sections[2].content_type.media_type(), "application/dicom");
        assert!(sections_from_bundle(br#"{"resourceType":"Patient"}"#).is_err());
        assert!(sections_from_bundle(b"not json").is_err());
    }

    fn testdata(path: &str) -> Vec<u8> {
        std::fs::read(format!(
            "{}/../../testdata/fhir/{path}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    }

    #[test]
    fn every_curated_example_is_valid_fhir_r4() {
        for dir in ["hl7", "synthea"] {
            let folder = format!("{}/../../testdata/fhir/{dir}", env!("CARGO_MANIFEST_DIR"));
            let mut n = 0;
            for entry in std::fs::read_dir(folder).unwrap().flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                // the HL7 folder also holds single resources; records are bundles
                if !name.ends_with(".json") || (dir == "hl7" && !name.starts_with("Bundle-")) {
                    continue;
                }
                let bytes = testdata(&format!("{dir}/{name}"));
                validate_r4(&bytes).unwrap_or_else(|e| panic!("{dir}/{name}: {e}"));
                n += 1;
            }
            assert!(n >= 2, "{dir}: {n} files");
        }
    }

    #[test]
    fn invalid_fhir_is_refused_with_the_element_path() {
        let err = sections_from_bundle(&testdata("invalid/not-a-bundle.json")).unwrap_err();
        assert!(matches!(err, Error::Validate(_)), "{err}");
        assert!(err.to_string().contains("Bundle.entry"), "{err}");

        // Well-formed JSON and a real resource type, but an unknown element and a wrong type:
        // each reported with its path.
        let bad = br#"{"resourceType":"Bundle","type":"collection","entry":[
            {"resource":{"resourceType":"Patient","id":"p1",
                         "favouriteColour":"blue","birthDate":19741225}}]}"#;
        let message = sections_from_bundle(bad).unwrap_err().to_string();
        for path in [
            "Bundle.entry[0].resource.favouriteColour: unknown element",
            "Bundle.entry[0].resource.birthDate: expected a string",
        ] {
            assert!(message.contains(path), "{path} not in: {message}");
        }
        assert!(
            message.contains("not a valid FHIR R4 Bundle (2 problem(s))"),
            "{message}"
        );
        // A resource that is not a Bundle.
        let message = sections_from_bundle(&testdata("hl7/Patient-example.json"))
            .unwrap_err()
            .to_string();
        assert!(message.contains("expected \"Bundle\""), "{message}");
    }
}
