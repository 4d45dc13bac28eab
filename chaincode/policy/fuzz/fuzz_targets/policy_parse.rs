//! Policy text: parsing must never panic, and whatever parses must round-trip through its
//! display and canonical form.
#![no_main]

use libfuzzer_sys::fuzz_target;
use medfabric_policy::{Attribute, AttributeSet, Expr, Limits, Policy};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let attrs: AttributeSet = ["a:1", "role:physician", "org:Hospital1MSP"]
        .into_iter()
        .filter_map(|a| Attribute::parse(a).ok())
        .collect();
    if let Ok(expr) = Expr::parse(text) {
        let shown = expr.to_string();
        let back = Expr::parse_with_limits(&shown, Limits::DEFAULT.with_max_len(usize::MAX));
        assert_eq!(back.as_ref(), Ok(&expr), "display round trip of {text:?}");
        let canonical = expr.canonical();
        assert_eq!(canonical.canonical(), canonical, "canonical is idempotent");
        assert_eq!(
            canonical.evaluate(&attrs),
            expr.evaluate(&attrs),
            "canonical keeps meaning"
        );
    }
    if let Ok(policy) = Policy::parse(text) {
        assert_eq!(Policy::parse(policy.as_str()).as_ref(), Ok(&policy));
        let _ = policy.evaluate(&attrs);
        let _ = policy.is_monotone();
    }
    let _ = Attribute::parse(text);
});
