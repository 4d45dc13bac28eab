//! Parser, canonical form, evaluation and limits of the policy language.
#![allow(clippy::unwrap_used)]

use medfabric_policy::expr::{Error, Expected};
use medfabric_policy::{Attribute, AttributeSet, Expr, Limits, Policy};

fn attr(s: &str) -> Expr {
    Expr::Attr(Attribute::parse(s).unwrap())
}

fn set(attrs: &[&str]) -> AttributeSet {
    attrs.iter().map(|a| Attribute::parse(a).unwrap()).collect()
}

// ----- parsing: valid input ------------------------------------------------------------------

#[test]
fn parses_attributes_and_operators_as_written() {
    assert_eq!(
        Expr::parse("role:physician").unwrap(),
        attr("role:physician")
    );
    assert_eq!(
        Expr::parse("a:1 AND b:2 and c:3").unwrap(),
        Expr::And(vec![attr("a:1"), attr("b:2"), attr("c:3")])
    );
    assert_eq!(
        Expr::parse("a:1 or b:2 Or c:3").unwrap(),
        Expr::Or(vec![attr("a:1"), attr("b:2"), attr("c:3")])
    );
    assert_eq!(
        Expr::parse("NOT a:1").unwrap(),
        Expr::Not(Box::new(attr("a:1")))
    );
    assert_eq!(
        Expr::parse("not NoT a:1").unwrap(),
        Expr::Not(Box::new(Expr::Not(Box::new(attr("a:1")))))
    );
    // NOT binds tighter than AND.
    assert_eq!(
        Expr::parse("NOT a:1 AND b:2").unwrap(),
        Expr::And(vec![Expr::Not(Box::new(attr("a:1"))), attr("b:2")])
    );
    // Parentheses group, they add no node; explicit grouping of the same operator is kept.
    assert_eq!(Expr::parse("((a:1))").unwrap(), attr("a:1"));
    assert_eq!(
        Expr::parse("(a:1 AND b:2) AND c:3").unwrap(),
        Expr::And(vec![Expr::And(vec![attr("a:1"), attr("b:2")]), attr("c:3")])
    );
    assert_eq!(
        Expr::parse("(a:1 OR b:2) AND c:3").unwrap(),
        Expr::And(vec![Expr::Or(vec![attr("a:1"), attr("b:2")]), attr("c:3")])
    );
}

#[test]
fn parses_thresholds() {
    assert_eq!(
        Expr::parse("2 of (a:1, b:2, c:3)").unwrap(),
        Expr::Threshold {
            k: 2,
            children: vec![attr("a:1"), attr("b:2"), attr("c:3")]
        }
    );
    assert_eq!(
        Expr::parse("2 OF (a:1 AND b:2, c:3 OR d:4, NOT e:5)").unwrap(),
        Expr::Threshold {
            k: 2,
            children: vec![
                Expr::And(vec![attr("a:1"), attr("b:2")]),
                Expr::Or(vec![attr("c:3"), attr("d:4")]),
                Expr::Not(Box::new(attr("e:5"))),
            ]
        }
    );
    assert_eq!(
        Expr::parse("1 of (2 of (a:1,b:2,c:3),d:4)").unwrap(),
        Expr::Threshold {
            k: 1,
            children: vec![
                Expr::Threshold {
                    k: 2,
                    children: vec![attr("a:1"), attr("b:2"), attr("c:3")]
                },
                attr("d:4")
            ]
        }
    );
    // Leading zeros are a count like any other.
    assert_eq!(
        Expr::parse("02 of (a:1, b:2)").unwrap(),
        Expr::Threshold {
            k: 2,
            children: vec![attr("a:1"), attr("b:2")]
        }
    );
}

#[test]
fn accepts_the_attribute_alphabet_and_whitespace() {
    let e = Expr::parse(
        "\t user:alice@hospital-1.example_x\r\nAND(org:Hospital1MSP)AND purpose:treatment\n",
    )
    .unwrap();
    assert_eq!(
        e,
        Expr::And(vec![
            attr("user:alice@hospital-1.example_x"),
            attr("org:Hospital1MSP"),
            attr("purpose:treatment"),
        ])
    );
    // Attribute names may look like keywords: the colon makes them attributes.
    assert_eq!(Expr::parse("and:or").unwrap(), attr("and:or"));
    let a = Attribute::parse("dept:cardiology").unwrap();
    assert_eq!((a.name(), a.value()), ("dept", "cardiology"));
}

// ----- parsing: errors and their positions ----------------------------------------------------

fn unexpected(input: &str) -> (usize, Expected, String) {
    match Expr::parse(input) {
        Err(Error::UnexpectedToken {
            position,
            expected,
            found,
        }) => (position, expected, found),
        other => panic!("{input:?}: expected UnexpectedToken, got {other:?}"),
    }
}

#[test]
fn reports_unexpected_tokens_with_position_and_expectation() {
    let cases: &[(&str, usize, Expected, &str)] = &[
        ("", 0, Expected::Operand, "end of input"),
        ("   ", 3, Expected::Operand, "end of input"),
        ("role:physician AND", 18, Expected::Operand, "end of input"),
        (
            "role:physician AND AND x:y",
            19,
            Expected::Operand,
            "keyword AND",
        ),
        ("NOT", 3, Expected::Operand, "end of input"),
        ("()", 1, Expected::Operand, "')'"),
        (
            "(a:1 OR b:2",
            11,
            Expected::OperatorOrCloseParen,
            "end of input",
        ),
        ("(a:1 OR b:2,", 11, Expected::OperatorOrCloseParen, "','"),
        ("a:1)", 3, Expected::OperatorOrEnd, "')'"),
        ("a:1 b:2", 4, Expected::OperatorOrEnd, "attribute b:2"),
        ("a:1 of", 4, Expected::OperatorOrEnd, "keyword 'of'"),
        ("a:1 AND 2", 9, Expected::Of, "end of input"),
        ("2 (a:1, b:2)", 2, Expected::Of, "'('"),
        ("2 of a:1", 5, Expected::OpenParen, "attribute a:1"),
        ("2 of ()", 6, Expected::Operand, "')'"),
        (
            "2 of (a:1 b:2)",
            10,
            Expected::OperatorCommaOrCloseParen,
            "attribute b:2",
        ),
        (
            "2 of (a:1, b:2",
            14,
            Expected::OperatorCommaOrCloseParen,
            "end of input",
        ),
    ];
    for &(input, position, expected, found) in cases {
        assert_eq!(
            unexpected(input),
            (position, expected, found.to_owned()),
            "{input:?}"
        );
    }
}

#[test]
fn reports_bad_characters_where_they_are() {
    let cases: &[(&str, usize, char)] = &[
        ("role:phys#ician", 9, '#'),
        ("role:médecin", 6, 'é'),
        ("a:1 AND b:2;", 11, ';'),
        ("2 of (a:1; b:2)", 9, ';'),
        ("a:1 && b:2", 4, '&'),
        ("\"a:1\"", 0, '"'),
        ("a:1 AND b:2 ∧ c:3", 12, '∧'),
        ("x:y\u{0}", 3, '\u{0}'),
    ];
    for &(input, position, found) in cases {
        assert_eq!(
            Expr::parse(input),
            Err(Error::InvalidCharacter { position, found }),
            "{input:?}"
        );
    }
    let err = Expr::parse("role:phys#ician").unwrap_err().to_string();
    assert!(err.contains("byte 9"), "{err}");
    assert!(err.contains("'#'"), "{err}");
}

#[test]
fn reports_malformed_attributes() {
    let cases: &[(&str, usize, &str)] = &[
        ("physician", 0, "missing ':'"),
        ("a:1 AND physician", 8, "missing ':'"),
        ("a:1 AND :x", 8, "empty attribute name"),
        ("a:1 AND x:", 10, "empty attribute value"),
        ("a:b:c", 3, "more than one ':'"),
        ("2of (a:1)", 0, "missing ':'"),
    ];
    for &(input, want_pos, want_reason) in cases {
        match Expr::parse(input) {
            Err(Error::InvalidAttribute {
                position, reason, ..
            }) => {
                assert_eq!(position, want_pos, "{input:?}");
                assert!(reason.contains(want_reason), "{input:?}: {reason}");
            }
            other => panic!("{input:?}: {other:?}"),
        }
    }
    assert!(Attribute::new("role", "a b").is_err());
    assert!(Attribute::new("", "x").is_err());
    assert!(Attribute::new("x", "").is_err());
    assert!(Attribute::new("a:b", "c").is_err());
}

#[test]
fn rejects_mixed_and_or_without_parentheses() {
    assert_eq!(
        Expr::parse("a:1 OR b:2 AND c:3"),
        Err(Error::MixedOperators { position: 11 })
    );
    assert_eq!(
        Expr::parse("a:1 AND b:2 AND c:3 or d:4"),
        Err(Error::MixedOperators { position: 20 })
    );
    assert!(Expr::parse("a:1 OR (b:2 AND c:3)").is_ok());
}

#[test]
fn rejects_thresholds_out_of_range() {
    assert_eq!(
        Expr::parse("3 of (a:1, b:2)"),
        Err(Error::InvalidThreshold {
            position: 0,
            k: 3,
            n: 2
        })
    );
    assert_eq!(
        Expr::parse("a:1 AND 0 of (a:1)"),
        Err(Error::InvalidThreshold {
            position: 8,
            k: 0,
            n: 1
        })
    );
    assert_eq!(
        Expr::parse("99999999999999999999999999 of (a:1)"),
        Err(Error::InvalidThreshold {
            position: 0,
            k: usize::MAX,
            n: 1
        })
    );
}

// ----- limits ---------------------------------------------------------------------------------

#[test]
fn rejects_text_over_the_length_limit_before_parsing() {
    let limits = Limits::DEFAULT.with_max_len(10);
    assert_eq!(
        Expr::parse_with_limits("a:1 AND b:2", limits),
        Err(Error::TooLong {
            length: 11,
            max: 10
        })
    );
    let long = format!("a:{}", "x".repeat(5000));
    assert!(matches!(Expr::parse(&long), Err(Error::TooLong { .. })));
}

#[test]
fn rejects_deep_parentheses_with_an_error_not_a_stack_overflow() {
    let unlimited_len = Limits::DEFAULT.with_max_len(usize::MAX);
    // Exactly at the limit is fine.
    let ok = format!("{}a:1{}", "(".repeat(32), ")".repeat(32));
    assert_eq!(Expr::parse(&ok).unwrap(), attr("a:1"));
    let too_deep = format!("{}a:1{}", "(".repeat(33), ")".repeat(33));
    assert_eq!(
        Expr::parse(&too_deep),
        Err(Error::TooDeep {
            position: 32,
            max: 32
        })
    );
    // A million levels: rejected at level 33, long before the stack could be at risk.
    let huge = format!("{}a:1{}", "(".repeat(1_000_000), ")".repeat(1_000_000));
    assert_eq!(
        Expr::parse_with_limits(&huge, unlimited_len),
        Err(Error::TooDeep {
            position: 32,
            max: 32
        })
    );
    let nots = format!("{}a:1", "NOT ".repeat(1_000_000));
    assert_eq!(
        Expr::parse_with_limits(&nots, unlimited_len),
        Err(Error::TooDeep {
            position: 32 * 4,
            max: 32
        })
    );
    let thresholds = format!("{}a:1{}", "1 of (".repeat(100_000), ")".repeat(100_000));
    assert!(matches!(
        Expr::parse_with_limits(&thresholds, unlimited_len),
        Err(Error::TooDeep { max: 32, .. })
    ));
    let unclosed = "(".repeat(100_000);
    assert!(matches!(
        Policy::parse_with_limits(&unclosed, unlimited_len),
        Err(Error::TooDeep { .. })
    ));
}

#[test]
fn depth_limit_is_configurable() {
    let limits = Limits::DEFAULT.with_max_depth(1);
    assert!(Expr::parse_with_limits("a:1 AND (b:1 OR c:1)", limits).is_ok());
    assert_eq!(
        Expr::parse_with_limits("NOT (a:1 OR c:1)", limits),
        Err(Error::TooDeep {
            position: 4,
            max: 1
        })
    );
    assert_eq!(
        Expr::parse_with_limits("2 of (a:1, NOT b:1)", limits),
        Err(Error::TooDeep {
            position: 11,
            max: 1
        })
    );
}

#[test]
fn rejects_too_many_attributes() {
    let ors = |n: usize| {
        (0..n)
            .map(|i| format!("a:{i}"))
            .collect::<Vec<_>>()
            .join(" OR ")
    };
    assert!(Expr::parse(&ors(128)).is_ok());
    let text = ors(129);
    let position = text.rfind("a:128").unwrap();
    assert_eq!(
        Expr::parse(&text),
        Err(Error::TooManyAttributes { position, max: 128 })
    );
    // Repeats count: the limit bounds work, not distinct names.
    let limits = Limits::DEFAULT.with_max_attributes(2);
    assert!(matches!(
        Expr::parse_with_limits("a:1 OR a:1 OR a:1", limits),
        Err(Error::TooManyAttributes {
            position: 14,
            max: 2
        })
    ));
}

#[test]
fn limits_apply_to_the_canonical_text_too() {
    // `n of n` over ORs becomes an AND whose OR children need parentheses: 41 bytes become 46.
    let text = "3 of (a:1 OR b:1, c:1 OR d:1, e:1 OR f:1)";
    assert_eq!(text.len(), 41);
    let limits = Limits::DEFAULT.with_max_len(41);
    assert!(Expr::parse_with_limits(text, limits).is_ok());
    assert_eq!(
        Policy::parse_with_limits(text, limits),
        Err(Error::TooLong {
            length: 46,
            max: 41
        })
    );
    assert!(Policy::parse_with_limits(text, limits.with_max_len(46)).is_ok());
}

// ----- canonical form ---------------------------------------------------------------------------

#[test]
fn canonical_form_normalises_exactly_what_is_documented() {
    let canon = |s: &str| Policy::parse(s).unwrap().to_string();
    // Commutativity and associativity of AND/OR, dedup, single child.
    assert_eq!(canon("c:1 AND (b:1 AND a:1)"), "a:1 AND b:1 AND c:1");
    assert_eq!(canon("b:1 OR a:1 OR b:1"), "a:1 OR b:1");
    assert_eq!(canon("a:1 OR a:1"), "a:1");
    assert_eq!(canon("(a:1 AND a:1) OR (a:1)"), "a:1");
    // Double negation.
    assert_eq!(canon("NOT NOT NOT a:1"), "NOT a:1");
    assert_eq!(canon("NOT (NOT (b:1 OR a:1))"), "a:1 OR b:1");
    // 1-of-n is OR, n-of-n is AND; duplicates in other thresholds count and are kept.
    assert_eq!(canon("1 of (b:1, a:1)"), "a:1 OR b:1");
    assert_eq!(canon("2 of (b:1, a:1)"), "a:1 AND b:1");
    assert_eq!(canon("2 of (a:1, a:1)"), "a:1");
    assert_eq!(canon("2 of (c:1, a:1, a:1)"), "2 of (a:1, a:1, c:1)");
    assert_eq!(canon("1 OF (x:1)"), "x:1");
    // Kind order: attributes, NOT, thresholds, AND, OR.
    assert_eq!(
        canon(
            "(d:1 OR e:1) AND 2 of (x:1, y:1, z:1) AND NOT c:1 AND z:9 AND (2 of (x:1, y:1, z:1))"
        ),
        "z:9 AND NOT c:1 AND 2 of (x:1, y:1, z:1) AND (d:1 OR e:1)"
    );
    // Flattening through a former threshold.
    assert_eq!(canon("a:1 AND 2 of (b:1, c:1)"), "a:1 AND b:1 AND c:1");
    // What is not normalised: absorption, De Morgan.
    assert_eq!(canon("a:1 OR (a:1 AND b:1)"), "a:1 OR (a:1 AND b:1)");
    assert_ne!(
        Policy::parse("NOT (a:1 OR b:1)").unwrap(),
        Policy::parse("NOT a:1 AND NOT b:1").unwrap()
    );
    // Keywords are written in one case.
    assert_eq!(canon("not a:1 and b:1"), "b:1 AND NOT a:1");
}

#[test]
fn equivalent_spellings_compare_equal() {
    let a = Policy::parse("(role:physician AND org:HospitalA) OR role:auditor").unwrap();
    let b = Policy::parse("role:auditor or (org:HospitalA and role:physician)").unwrap();
    let c = Policy::parse("1 of (role:auditor, 2 of (role:physician, org:HospitalA))").unwrap();
    assert_eq!(a, b);
    assert_eq!(a, c);
    assert_eq!(
        a.to_string(),
        "role:auditor OR (org:HospitalA AND role:physician)"
    );
    let d = Policy::parse("(role:physician OR org:HospitalA) AND role:auditor").unwrap();
    assert_ne!(a, d);
}

#[test]
fn display_round_trips() {
    for text in [
        "a:1",
        "(a:1 AND b:1) AND c:1",
        "a:1 OR (b:1 AND (c:1 OR d:1))",
        "NOT (a:1 OR b:1)",
        "NOT NOT a:1",
        "2 of (a:1 AND b:1, NOT c:1, 1 of (d:1, e:1), f:1 OR g:1)",
        "x:1 AND 3 of (a:1, a:1, b:1, c:1)",
    ] {
        let e = Expr::parse(text).unwrap();
        assert_eq!(Expr::parse(&e.to_string()).unwrap(), e, "{text}");
        let p = Policy::parse(text).unwrap();
        assert_eq!(Policy::parse(p.as_str()).unwrap(), p, "{text}");
        assert_eq!(p.expr().to_string(), p.to_string());
    }
}

#[test]
fn serde_uses_the_canonical_string() {
    let p = Policy::parse("b:1 OR (a:1 AND c:1)").unwrap();
    let json = serde_json::to_string(&p).unwrap();
    assert_eq!(json, "\"b:1 OR (a:1 AND c:1)\"");
    let q = Policy::parse("(c:1 and a:1) or b:1").unwrap();
    assert_eq!(serde_json::to_string(&q).unwrap(), json);
    assert_eq!(serde_json::from_str::<Policy>(&json).unwrap(), p);
    // Deserialising canonicalises and checks.
    assert_eq!(
        serde_json::from_str::<Policy>("\"c:1 AND a:1\"")
            .unwrap()
            .as_str(),
        "a:1 AND c:1"
    );
    let err = serde_json::from_str::<Policy>("\"a:1 AND\"").unwrap_err();
    assert!(err.to_string().contains("byte 7"), "{err}");
    let deep = format!("\"{}a:1{}\"", "(".repeat(40), ")".repeat(40));
    assert!(serde_json::from_str::<Policy>(&deep).is_err());

    let attrs = set(&["role:x", "org:Y"]);
    let json = serde_json::to_string(&attrs).unwrap();
    assert_eq!(json, r#"["org:Y","role:x"]"#);
    assert_eq!(serde_json::from_str::<AttributeSet>(&json).unwrap(), attrs);
    assert!(serde_json::from_str::<AttributeSet>(r#"["role x"]"#).is_err());
}

#[test]
fn from_expr_validates_hand_built_trees() {
    let limits = Limits::DEFAULT;
    assert!(matches!(
        Policy::from_expr(&Expr::And(vec![attr("a:1")]), limits),
        Err(Error::MalformedExpr { .. })
    ));
    assert!(matches!(
        Policy::from_expr(&Expr::Or(vec![]), limits),
        Err(Error::MalformedExpr { .. })
    ));
    assert!(matches!(
        Policy::from_expr(
            &Expr::Threshold {
                k: 3,
                children: vec![attr("a:1"), attr("b:1")]
            },
            limits
        ),
        Err(Error::MalformedExpr { .. })
    ));
    let e = Expr::Or(vec![attr("b:1"), attr("a:1")]);
    assert_eq!(
        Policy::from_expr(&e, limits).unwrap(),
        Policy::parse("a:1 OR b:1").unwrap()
    );
}

// ----- evaluation ------------------------------------------------------------------------------

/// Every subset of `names`, as attribute sets, with the bit pattern that produced it.
fn subsets(names: &[&str]) -> Vec<(u32, AttributeSet)> {
    (0..1u32 << names.len())
        .map(|bits| {
            let held: Vec<&str> = names
                .iter()
                .enumerate()
                .filter(|(i, _)| bits >> i & 1 == 1)
                .map(|(_, n)| *n)
                .collect();
            (bits, set(&held))
        })
        .collect()
}

#[test]
fn truth_tables_for_and_or_not() {
    let and = Policy::parse("a:1 AND b:1").unwrap();
    let or = Policy::parse("a:1 OR b:1").unwrap();
    let not = Policy::parse("NOT a:1").unwrap();
    let and_not = Policy::parse("a:1 AND NOT b:1").unwrap();
    let nor = Policy::parse("NOT (a:1 OR b:1)").unwrap();
    for (bits, s) in subsets(&["a:1", "b:1"]) {
        let (a, b) = (bits & 1 == 1, bits & 2 == 2);
        assert_eq!(and.evaluate(&s), a && b, "{bits:b}");
        assert_eq!(or.evaluate(&s), a || b, "{bits:b}");
        assert_eq!(not.evaluate(&s), !a, "{bits:b}");
        assert_eq!(and_not.evaluate(&s), a && !b, "{bits:b}");
        assert_eq!(nor.evaluate(&s), !(a || b), "{bits:b}");
    }
}

#[test]
fn truth_tables_for_thresholds() {
    let names = ["a:1", "b:1", "c:1", "d:1"];
    for k in 1..=4 {
        let text = format!("{k} of (a:1, b:1, c:1, d:1)");
        let expr = Expr::parse(&text).unwrap();
        let policy = Policy::parse(&text).unwrap();
        for (bits, s) in subsets(&names) {
            let want = bits.count_ones() as usize >= k;
            assert_eq!(expr.evaluate(&s), want, "{text} {bits:04b}");
            assert_eq!(policy.evaluate(&s), want, "{text} {bits:04b}");
        }
    }
    // Duplicates count twice; NOT inside a threshold counts an absent attribute.
    let dup = Policy::parse("2 of (a:1, a:1, b:1)").unwrap();
    let with_not = Policy::parse("2 of (a:1, NOT b:1, c:1)").unwrap();
    for (bits, s) in subsets(&["a:1", "b:1", "c:1"]) {
        let (a, b, c) = (bits & 1 == 1, bits & 2 == 2, bits & 4 == 4);
        // Two of (a, a, b) holds exactly when a does.
        assert_eq!(dup.evaluate(&s), a, "{bits:03b}");
        let held = usize::from(a) + usize::from(!b) + usize::from(c);
        assert_eq!(with_not.evaluate(&s), held >= 2, "{bits:03b}");
    }
}

#[test]
fn evaluates_a_realistic_policy() {
    let p = Policy::parse(
        "(role:physician AND org:Hospital1MSP AND NOT ou:suspended) OR role:auditor \
         OR 2 of (role:researcher, purpose:research, org:UniMSP)",
    )
    .unwrap();
    assert!(p.evaluate(&set(&["role:physician", "org:Hospital1MSP", "ou:client"])));
    assert!(!p.evaluate(&set(&[
        "role:physician",
        "org:Hospital1MSP",
        "ou:suspended"
    ])));
    assert!(!p.evaluate(&set(&["role:physician", "org:Hospital2MSP"])));
    assert!(p.evaluate(&set(&["role:auditor"])));
    assert!(p.evaluate(&set(&["purpose:research", "org:UniMSP"])));
    assert!(!p.evaluate(&set(&["purpose:research"])));
    assert!(!p.evaluate(&AttributeSet::new()));
    // Attribute matching is exact and case-sensitive.
    assert!(!p.evaluate(&set(&["role:Auditor"])));
    assert!(set(&["role:auditor"]).contains_str("role:auditor"));
    assert!(!set(&["role:auditor"]).contains_str("role:Auditor"));
    assert!(!set(&["role:auditor"]).contains_str("not an attribute"));
    assert!(!p.is_monotone());
    let names: Vec<&str> = p.attributes().into_iter().map(Attribute::as_str).collect();
    assert_eq!(
        names,
        [
            "org:Hospital1MSP",
            "org:UniMSP",
            "ou:suspended",
            "purpose:research",
            "role:auditor",
            "role:physician",
            "role:researcher"
        ]
    );
}

#[test]
fn monotonicity() {
    for (text, monotone) in [
        ("a:1", true),
        ("a:1 AND (b:1 OR 2 of (c:1, d:1, e:1))", true),
        ("NOT a:1", false),
        ("a:1 OR 2 of (b:1, NOT c:1, d:1)", false),
        // Canonicalisation removes a double negation, and with it the non-monotonicity.
        ("NOT NOT a:1", true),
    ] {
        assert_eq!(
            Policy::parse(text).unwrap().is_monotone(),
            monotone,
            "{text}"
        );
    }
    assert!(!Expr::parse("NOT NOT a:1").unwrap().is_monotone());
}
