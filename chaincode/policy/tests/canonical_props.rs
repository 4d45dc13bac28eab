//! Property tests: display/parse round trips and invariance of the canonical form under
//! meaning-preserving rewrites.
#![allow(clippy::unwrap_used)]

use medfabric_policy::{Attribute, AttributeSet, Expr, Limits, Policy};
use proptest::prelude::*;

/// A small attribute pool, so that random trees repeat attributes and exercise dedup.
const POOL: [&str; 9] = [
    "a:0",
    "a:1",
    "a:2",
    "b:0",
    "b:1",
    "b:2",
    "org:H1MSP",
    "role:x-y",
    "u:me@h.org",
];

fn leaf() -> impl Strategy<Value = Expr> {
    (0..POOL.len()).prop_map(|i| Expr::Attr(Attribute::parse(POOL[i]).unwrap()))
}

/// Random well-formed trees: AND/OR with 2..5 children, NOT, thresholds with 1 <= k <= n.
fn expr() -> impl Strategy<Value = Expr> {
    leaf().prop_recursive(5, 48, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 2..5).prop_map(Expr::And),
            prop::collection::vec(inner.clone(), 2..5).prop_map(Expr::Or),
            inner.clone().prop_map(|e| Expr::Not(Box::new(e))),
            prop::collection::vec(inner, 1..5)
                .prop_flat_map(|children| {
                    let n = children.len();
                    (1..=n, Just(children))
                })
                .prop_map(|(k, children)| Expr::Threshold { k, children }),
        ]
    })
}

fn attribute_set(bits: u16) -> AttributeSet {
    POOL.iter()
        .enumerate()
        .filter(|(i, _)| bits >> i & 1 == 1)
        .map(|(_, a)| Attribute::parse(a).unwrap())
        .collect()
}

/// Deterministic pseudo-random stream for the rewrites below.
struct Stream(u64);
impl Stream {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn shuffle(v: &mut [Expr], s: &mut Stream) {
    for i in (1..v.len()).rev() {
        v.swap(i, s.below(i + 1));
    }
}

/// Rewrites `e` into an equivalent spelling: children shuffled at every level, AND/OR runs
/// regrouped, double negations added, 1-of-n and n-of-n thresholds swapped with OR/AND, and
/// AND/OR children duplicated.
fn respell(e: &Expr, s: &mut Stream) -> Expr {
    let out = match e {
        Expr::Attr(_) => e.clone(),
        Expr::Not(c) => Expr::Not(Box::new(respell(c, s))),
        Expr::And(cs) | Expr::Or(cs) => {
            let and = matches!(e, Expr::And(_));
            let mut cs: Vec<Expr> = cs.iter().map(|c| respell(c, s)).collect();
            if s.below(3) == 0 {
                let dup = cs[s.below(cs.len())].clone();
                cs.push(dup);
            }
            shuffle(&mut cs, s);
            let wrap = |cs: Vec<Expr>| if and { Expr::And(cs) } else { Expr::Or(cs) };
            match s.below(3) {
                // Regroup: (c0 op c1) op rest...
                0 if cs.len() >= 3 => {
                    let rest = cs.split_off(2);
                    let mut outer = vec![wrap(cs)];
                    outer.extend(rest);
                    wrap(outer)
                }
                // Spell as a threshold.
                1 => {
                    let k = if and { cs.len() } else { 1 };
                    Expr::Threshold { k, children: cs }
                }
                _ => wrap(cs),
            }
        }
        Expr::Threshold { k, children } => {
            let mut cs: Vec<Expr> = children.iter().map(|c| respell(c, s)).collect();
            shuffle(&mut cs, s);
            Expr::Threshold {
                k: *k,
                children: cs,
            }
        }
    };
    if s.below(5) == 0 {
        Expr::Not(Box::new(Expr::Not(Box::new(out))))
    } else {
        out
    }
}

/// Generous limits: the random trees are small, but respelling deepens them.
const LIMITS: Limits = Limits::DEFAULT
    .with_max_depth(64)
    .with_max_len(1 << 20)
    .with_max_attributes(4096);

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn display_parses_back_to_the_same_tree(e in expr()) {
        let text = e.to_string();
        prop_assert_eq!(Expr::parse_with_limits(&text, LIMITS).unwrap(), e);
    }

    #[test]
    fn canonical_display_parses_back_and_is_idempotent(e in expr()) {
        let c = e.canonical();
        prop_assert_eq!(Expr::parse_with_limits(&c.to_string(), LIMITS).unwrap(), c.clone());
        prop_assert_eq!(c.canonical(), c.clone());
        let p = Policy::from_expr(&e, LIMITS).unwrap();
        prop_assert_eq!(p.expr(), &c);
        prop_assert_eq!(Policy::parse_with_limits(&e.to_string(), LIMITS).unwrap(), p.clone());
        prop_assert_eq!(Policy::parse_with_limits(p.as_str(), LIMITS).unwrap(), p);
    }

    #[test]
    fn canonical_is_invariant_under_respelling(e in expr(), seed in any::<u64>()) {
        let mut s = Stream(seed | 1);
        let r = respell(&e, &mut s);
        prop_assert_eq!(r.canonical(), e.canonical(), "respelled: {}", r);
        let p = Policy::parse_with_limits(&e.to_string(), LIMITS).unwrap();
        let q = Policy::parse_with_limits(&r.to_string(), LIMITS).unwrap();
        prop_assert_eq!(p, q);
    }

    #[test]
    fn canonicalisation_and_respelling_preserve_meaning(e in expr(), seed in any::<u64>(), bits in any::<u16>()) {
        let attrs = attribute_set(bits);
        let want = e.evaluate(&attrs);
        prop_assert_eq!(e.canonical().evaluate(&attrs), want);
        let r = respell(&e, &mut Stream(seed | 1));
        prop_assert_eq!(r.evaluate(&attrs), want);
    }

    #[test]
    fn serde_round_trip(e in expr()) {
        let p = Policy::from_expr(&e, LIMITS).unwrap();
        let json = serde_json::to_string(&p).unwrap();
        prop_assert_eq!(json.clone(), serde_json::to_string(p.as_str()).unwrap());
        // Deserialisation uses the default limits, which these small trees fit.
        if let Ok(back) = serde_json::from_str::<Policy>(&json) {
            prop_assert_eq!(back, p);
        }
    }
}
