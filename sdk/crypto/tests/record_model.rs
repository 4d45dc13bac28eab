//! Record model: validation and serde round trips.
#![allow(clippy::unwrap_used)]

use medfabric_crypto::Error;
use medfabric_crypto::record::{
    ContentType, FHIR_R4_JSON_MEDIA_TYPE, MAX_ID_LEN, Pseudonym, Record, RecordId, Section,
    SectionId,
};

fn sid(s: &str) -> SectionId {
    SectionId::new(s).unwrap()
}

fn sample() -> Record {
    Record::new(
        RecordId::new("rec-0001").unwrap(),
        3,
        Pseudonym::new("dr-7f3a").unwrap(),
        Pseudonym::new("pt-91c2").unwrap(),
        vec![
            Section::fhir(
                sid("encounter"),
                br#"{"resourceType":"Encounter","status":"finished"}"#.to_vec(),
            ),
            Section::attachment(sid("ct-1"), "application/dicom", vec![0u8, 1, 2, 255]).unwrap(),
            Section::fhir(sid("empty"), Vec::new()),
        ],
    )
    .unwrap()
}

#[test]
fn json_round_trip_uses_base64_for_bytes() {
    let r = sample();
    let json = serde_json::to_string(&r).unwrap();
    assert!(json.contains(r#""bytes":"AAEC/w==""#), "{json}");
    assert!(json.contains(r#""kind":"fhir_r4_json""#));
    let back: Record = serde_json::from_str(&json).unwrap();
    assert_eq!(back, r);
}

#[test]
fn deserialisation_validates() {
    let r = sample();
    let json = serde_json::to_string(&r).unwrap();
    let dup = json.replace(r#""id":"empty""#, r#""id":"encounter""#);
    assert!(serde_json::from_str::<Record>(&dup).is_err());
    let bad_id = json.replace(r#""id":"rec-0001""#, r#""id":"rec 0001""#);
    assert!(serde_json::from_str::<Record>(&bad_id).is_err());
    let bad_media = json.replace("application/dicom", "dicom");
    assert!(serde_json::from_str::<Record>(&bad_media).is_err());
}

#[test]
fn ids_are_bounded_and_printable() {
    assert!(RecordId::new("").is_err());
    assert!(RecordId::new("a".repeat(MAX_ID_LEN)).is_ok());
    assert!(matches!(
        RecordId::new("a".repeat(MAX_ID_LEN + 1)),
        Err(Error::InvalidInput(_))
    ));
    assert!(SectionId::new("tab\there").is_err());
    assert!(SectionId::new("é").is_err());
    assert_eq!("ok-1".parse::<SectionId>().unwrap().as_str(), "ok-1");
}

#[test]
fn sections_must_be_unique_and_non_empty() {
    let mk = |sections| {
        Record::new(
            RecordId::new("r").unwrap(),
            1,
            Pseudonym::new("a").unwrap(),
            Pseudonym::new("o").unwrap(),
            sections,
        )
    };
    assert!(mk(vec![]).is_err());
    assert!(
        mk(vec![
            Section::fhir(sid("x"), vec![]),
            Section::fhir(sid("x"), vec![1])
        ])
        .is_err()
    );
    let r = mk(vec![
        Section::fhir(sid("x"), vec![]),
        Section::fhir(sid("y"), vec![1]),
    ])
    .unwrap();
    assert_eq!(r.section_index("y"), Some(1));
    assert_eq!(r.section("x").unwrap().bytes, Vec::<u8>::new());
    assert_eq!(r.section_index("z"), None);
}

#[test]
fn content_type_media_types_round_trip() {
    assert_eq!(
        ContentType::FhirR4Json.media_type(),
        FHIR_R4_JSON_MEDIA_TYPE
    );
    assert_eq!(
        ContentType::from_media_type(FHIR_R4_JSON_MEDIA_TYPE).unwrap(),
        ContentType::FhirR4Json
    );
    let dicom = ContentType::attachment("application/dicom").unwrap();
    assert_eq!(
        ContentType::from_media_type(dicom.media_type()).unwrap(),
        dicom
    );
    assert!(ContentType::attachment("application/").is_err());
    assert!(ContentType::attachment("a/b\n").is_err());
}

#[test]
fn debug_does_not_print_section_content() {
    let r = sample();
    let dbg = format!("{r:?}");
    assert!(!dbg.contains("Encounter"), "{dbg}");
    assert!(dbg.contains("len"));
}
