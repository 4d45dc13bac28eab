//! Smoke test of every decoder of untrusted input: thousands of random and mutated policy texts
//! and certificates must give values or errors, never panics. (The cargo-fuzz targets in
//! `fuzz/` explore further; this runs in every `cargo test`.)
#![allow(clippy::unwrap_used)]

use medfabric_policy::{Attribute, AttributeSet, CallerIdentity, Expr, Limits, Policy};
use rcgen::{CertificateParams, CustomExtension, DistinguishedName, DnType, KeyPair};

/// Deterministic xorshift64* stream: the same inputs on every run.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
    fn bytes(&mut self, max: usize) -> Vec<u8> {
        let n = self.below(max + 1);
        (0..n).map(|_| self.next() as u8).collect()
    }
}

const TOKENS: &[&str] = &[
    "role:physician",
    "dept:cardiology",
    "org:Hospital1MSP",
    "a:1",
    "b:2",
    "x:y",
    "AND",
    "and",
    "OR",
    "or",
    "NOT",
    "not",
    "of",
    "OF",
    "2",
    "1",
    "0",
    "3",
    "99999999999999999999",
    "(",
    ")",
    ",",
    " ",
    "  ",
    "\t",
    "\n",
    ":",
    "::",
    "a:",
    ":b",
    "a:b:c",
    "word",
    "@",
    "-",
    ".",
    "_",
    "é",
    "∧",
    "#",
    "\"",
    "\0",
    "((((",
    "))))",
    "NOT NOT",
    "2 of (",
    "a:1,",
    "😀",
];

const SEEDS: &[&str] = &[
    "(role:physician AND org:Hospital1MSP) OR role:auditor",
    "2 of (role:researcher, purpose:research, org:UniMSP) AND NOT ou:suspended",
    "NOT (a:1 OR b:2) AND 1 of (c:3, d:4 AND e:5)",
    "((a:1))",
];

fn check_policy_text(text: &str, attrs: &AttributeSet) {
    if let Ok(e) = Expr::parse(text) {
        // Whatever parses round-trips and evaluates.
        let shown = e.to_string();
        assert_eq!(
            Expr::parse_with_limits(&shown, Limits::DEFAULT.with_max_len(usize::MAX)).unwrap(),
            e,
            "{text:?}"
        );
        let _ = e.evaluate(attrs);
        let _ = e.is_monotone();
    }
    if let Ok(p) = Policy::parse(text) {
        assert_eq!(Policy::parse(p.as_str()).unwrap(), p, "{text:?}");
        assert_eq!(p.expr().canonical(), *p.expr());
        let _ = p.evaluate(attrs);
    }
    let _ = Attribute::parse(text);
    let _ = serde_json::from_str::<Policy>(&format!("{text:?}"));
}

fn mutate_text(rng: &mut Rng, text: &str) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    for _ in 0..=rng.below(4) {
        let at = rng.below(chars.len() + 1);
        match rng.below(4) {
            0 if at < chars.len() => {
                chars.remove(at);
            }
            1 => chars
                .splice(at..at, rng.pick(TOKENS).chars())
                .for_each(drop),
            2 if at < chars.len() => chars[at] = char::from(rng.next() as u8 & 0x7f),
            _ => chars.insert(at, *rng.pick(&['(', ')', ',', ' ', ':', 'x'])),
        }
    }
    chars.into_iter().collect()
}

#[test]
fn policy_parser_never_panics() {
    let mut rng = Rng(0x5eed_0001);
    let attrs: AttributeSet = ["role:physician", "org:Hospital1MSP", "a:1", "x:y"]
        .iter()
        .map(|a| Attribute::parse(a).unwrap())
        .collect();
    let mut parsed = 0;
    for _ in 0..4000 {
        let text: String = (0..rng.below(24)).map(|_| *rng.pick(TOKENS)).collect();
        check_policy_text(&text, &attrs);
        parsed += usize::from(Expr::parse(&text).is_ok());
    }
    for _ in 0..4000 {
        let seed = *rng.pick(SEEDS);
        let text = mutate_text(&mut rng, seed);
        check_policy_text(&text, &attrs);
        parsed += usize::from(Expr::parse(&text).is_ok());
    }
    for _ in 0..2000 {
        let bytes = rng.bytes(64);
        check_policy_text(&String::from_utf8_lossy(&bytes), &attrs);
    }
    // The generators reach the parser's success paths, not only its error paths.
    assert!(parsed > 500, "only {parsed} inputs parsed");
}

#[test]
fn policy_parser_survives_pathological_nesting() {
    let no_len_limit = Limits::DEFAULT.with_max_len(usize::MAX);
    for text in [
        "(".repeat(200_000),
        ")".repeat(200_000),
        "NOT ".repeat(200_000),
        "2 of (".repeat(50_000),
        format!("{}a:1", "NOT (".repeat(100_000)),
        format!("a:1{}", " AND a:1".repeat(100_000)),
        "a:1,".repeat(100_000),
    ] {
        assert!(Expr::parse_with_limits(&text, no_len_limit).is_err());
        assert!(Policy::parse_with_limits(&text, no_len_limit).is_err());
    }
}

fn sample_certificate(attrs_json: &str) -> Vec<u8> {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["peer0.hospital1.example.com".into()]).unwrap();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "user1");
    dn.push(DnType::OrganizationalUnitName, "client");
    params.distinguished_name = dn;
    params
        .custom_extensions
        .push(CustomExtension::from_oid_content(
            &[1, 2, 3, 4, 5, 6, 7, 8, 1],
            attrs_json.as_bytes().to_vec(),
        ));
    params.self_signed(&key).unwrap().der().to_vec()
}

fn check_certificate(msp: &str, bytes: &[u8]) -> bool {
    match CallerIdentity::from_certificate(msp, bytes) {
        Ok(id) => {
            let _ = id.attributes();
            let _ = id.check_validity_at(0);
            let _ = id.fingerprint().to_string();
            true
        }
        Err(e) => {
            let _ = e.to_string();
            false
        }
    }
}

#[test]
fn certificate_parser_never_panics() {
    let json = r#"{"attrs":{"role":"physician","dept":"cardiology","hf.Type":"client"}}"#;
    let der = sample_certificate(json);
    assert!(check_certificate("Hospital1MSP", &der));
    let pem = {
        let key = KeyPair::generate().unwrap();
        CertificateParams::new(vec!["x".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap()
            .pem()
    };
    assert!(check_certificate("Hospital1MSP", pem.as_bytes()));
    let msps = ["Hospital1MSP", "", "bad msp", "Org2MSP"];
    let mut rng = Rng(0x5eed_0002);

    // Byte-level mutations of a valid DER certificate.
    for _ in 0..3000 {
        let mut bytes = der.clone();
        for _ in 0..=rng.below(3) {
            let at = rng.below(bytes.len());
            match rng.below(5) {
                0 => bytes[at] ^= 1 << rng.below(8),
                1 => bytes[at] = rng.next() as u8,
                2 => bytes.truncate(at),
                3 => {
                    let extra = rng.bytes(8);
                    bytes.splice(at..at, extra).for_each(drop);
                }
                _ => {
                    bytes.remove(at);
                }
            }
            if bytes.is_empty() {
                break;
            }
        }
        let msp = *rng.pick(&msps);
        check_certificate(msp, &bytes);
    }

    // Same-length mutations inside the attribute JSON keep the DER valid and reach the JSON
    // decoder.
    let json_at = der
        .windows(json.len())
        .position(|w| w == json.as_bytes())
        .unwrap();
    let mut decoded_json = 0;
    for _ in 0..2000 {
        let mut bytes = der.clone();
        for _ in 0..=rng.below(3) {
            let at = json_at + rng.below(json.len());
            bytes[at] = *rng.pick(b"{}[]\":,0123456789abcnrtu\\ \x00\xff\xc3");
        }
        decoded_json += usize::from(check_certificate("Hospital1MSP", &bytes));
    }
    assert!(decoded_json > 0);

    // Text mutations of a PEM certificate, and random bytes.
    for _ in 0..2000 {
        let text = mutate_text(&mut rng, &pem);
        check_certificate("Hospital1MSP", text.as_bytes());
    }
    for _ in 0..2000 {
        let mut bytes = rng.bytes(300);
        if rng.below(2) == 0 {
            bytes.splice(0..0, *b"\x30\x82\x01").for_each(drop);
        }
        check_certificate("Hospital1MSP", &bytes);
    }
}
