//! The attribute policy language shared by the chaincode and the CP-ABE layer.
//!
//! # Syntax
//!
//! ```text
//! policy    := chain                                 (the whole input)
//! chain     := unary ( AND unary )*  |  unary ( OR unary )*
//! unary     := NOT unary  |  primary
//! primary   := attribute  |  '(' chain ')'  |  k OF '(' chain ( ',' chain )* ')'
//! attribute := word ':' word          word := [A-Za-z0-9_.@-]+
//! ```
//!
//! * Attributes are `name:value` tokens such as `role:physician`, `dept:cardiology`,
//!   `org:Hospital1MSP` or `purpose:treatment`. Name and value are non-empty and consist of ASCII
//!   letters, digits and `_ - . @`; exactly one `:` separates them. They compare byte for byte
//!   (case-sensitive: MSP ids are).
//! * `AND`, `OR`, `NOT` and `of` are keywords in any letter case. `NOT` binds tightest.
//! * `AND` and `OR` may not be mixed in one group without parentheses: `a OR b AND c` is rejected
//!   ([`Error::MixedOperators`]) rather than silently read one way; write `a OR (b AND c)`.
//! * `k of (p1, ..., pn)` is a threshold: at least `k` of the `n` sub-policies hold, `1 <= k <= n`.
//! * Whitespace (ASCII space, tab, CR, LF) separates tokens. Error positions are byte offsets into
//!   the input, counted from 0.
//!
//! # Two types
//!
//! [`Expr`] is the syntax tree exactly as written (parentheses group, they do not add nodes;
//! a run of the same operator is one n-ary node). Its [`Display`](fmt::Display) prints a text that
//! parses back to an equal `Expr`.
//!
//! [`Policy`] is what the ledger stores and compares: parsed under [`Limits`], then canonicalised
//! (see [`Expr::canonical`]). Its `Display` is the canonical text, it serialises (serde) as that
//! text, and two policies are equal exactly when their canonical texts are.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

/// Every failure of the policy language: parse errors carry the byte offset where they occur.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A character that is neither whitespace, `(`, `)`, `,`, `:` nor allowed in attribute names
    /// and values (ASCII letters, digits, `_`, `-`, `.`, `@`).
    #[error(
        "unexpected character {found:?} at byte {position}; attribute names and values may contain only ASCII letters, digits, '_', '-', '.' and '@'"
    )]
    InvalidCharacter {
        /// Byte offset of the character.
        position: usize,
        /// The character found.
        found: char,
    },
    /// A word that is neither a keyword, a threshold count nor a well-formed `name:value`
    /// attribute.
    #[error("invalid attribute {token:?} at byte {position}: {reason}")]
    InvalidAttribute {
        /// Byte offset of the offending part of the word.
        position: usize,
        /// The whole word.
        token: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A token other than the ones the grammar allows at this point (or the end of input).
    #[error("expected {expected} at byte {position}, found {found}")]
    UnexpectedToken {
        /// Byte offset of the token found (the input length for the end of input).
        position: usize,
        /// What the grammar allows here.
        expected: Expected,
        /// The token found, e.g. `')'`, `keyword OR`, `end of input`.
        found: String,
    },
    /// `AND` and `OR` in the same group without parentheses.
    #[error(
        "AND and OR mixed without parentheses at byte {position}; add parentheses to say which binds first"
    )]
    MixedOperators {
        /// Byte offset of the first operator that differs from the group's first operator.
        position: usize,
    },
    /// A threshold `k of (...)` with `k` outside `1..=n`.
    #[error("invalid threshold at byte {position}: {k} of {n} (need 1 <= k <= n)")]
    InvalidThreshold {
        /// Byte offset of the count `k`.
        position: usize,
        /// The count (saturated at `usize::MAX` if the digits overflow).
        k: usize,
        /// The number of sub-policies.
        n: usize,
    },
    /// The policy text is longer than [`Limits::max_len`] bytes (checked before parsing, and again
    /// on the canonical text).
    #[error("policy is {length} bytes long, the limit is {max}")]
    TooLong {
        /// Length of the text in bytes.
        length: usize,
        /// The limit.
        max: usize,
    },
    /// Parentheses, thresholds and `NOT` are nested deeper than [`Limits::max_depth`].
    #[error("policy nests deeper than {max} levels at byte {position}")]
    TooDeep {
        /// Byte offset of the `(`, threshold or `NOT` that went too deep.
        position: usize,
        /// The limit.
        max: usize,
    },
    /// The policy names more attributes (counting repeats) than [`Limits::max_attributes`].
    #[error("policy has more than {max} attributes at byte {position}")]
    TooManyAttributes {
        /// Byte offset of the first attribute over the limit.
        position: usize,
        /// The limit.
        max: usize,
    },
    /// A hand-built [`Expr`] that no text can express (e.g. an `AND` with fewer than two
    /// children, or a threshold with `k` out of range).
    #[error("malformed policy expression: {reason}")]
    MalformedExpr {
        /// What is wrong.
        reason: &'static str,
    },
}

/// What the parser expected where it found something else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Expected {
    /// An attribute, `NOT`, `(` or a threshold `k of (...)`.
    Operand,
    /// `AND`, `OR` or the end of the policy.
    OperatorOrEnd,
    /// `AND`, `OR` or `)`.
    OperatorOrCloseParen,
    /// `AND`, `OR`, `,` or `)` inside a threshold's list.
    OperatorCommaOrCloseParen,
    /// The keyword `of` after a threshold count.
    Of,
    /// `(` after `k of`.
    OpenParen,
}

impl fmt::Display for Expected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Operand => "an attribute (name:value), NOT, '(' or a threshold 'k of (...)'",
            Self::OperatorOrEnd => "AND, OR or the end of the policy",
            Self::OperatorOrCloseParen => "AND, OR or ')'",
            Self::OperatorCommaOrCloseParen => "AND, OR, ',' or ')'",
            Self::Of => "'of'",
            Self::OpenParen => "'('",
        })
    }
}

/// Size limits applied to untrusted policy text, so that it can neither exhaust the stack nor
/// make evaluation or CP-ABE encryption arbitrarily expensive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Maximum length of the text in bytes.
    pub max_len: usize,
    /// Maximum nesting of parentheses, thresholds and `NOT` (each counts one level; the top
    /// level is 0, so `a AND b` has depth 0 and `NOT (a OR b)` depth 2).
    pub max_depth: usize,
    /// Maximum number of attribute occurrences (repeats count).
    pub max_attributes: usize,
}

impl Limits {
    /// The defaults: 4096 bytes, depth 32, 128 attributes.
    pub const DEFAULT: Self = Self {
        max_len: 4096,
        max_depth: 32,
        max_attributes: 128,
    };

    /// These limits with another maximum length.
    #[must_use]
    pub const fn with_max_len(mut self, max_len: usize) -> Self {
        self.max_len = max_len;
        self
    }

    /// These limits with another maximum depth.
    #[must_use]
    pub const fn with_max_depth(mut self, max_depth: usize) -> Self {
        self.max_depth = max_depth;
        self
    }

    /// These limits with another maximum number of attributes.
    #[must_use]
    pub const fn with_max_attributes(mut self, max_attributes: usize) -> Self {
        self.max_attributes = max_attributes;
        self
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Whether `b` may appear in an attribute name or value.
const fn is_attribute_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'@')
}

/// One `name:value` attribute, validated.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Attribute {
    /// `name:value`.
    text: String,
    /// Byte index of the `:` in `text`.
    colon: usize,
}

impl Attribute {
    /// An attribute from its name and value.
    ///
    /// # Errors
    /// [`Error::InvalidAttribute`] or [`Error::InvalidCharacter`] if either part is empty or
    /// contains a character outside ASCII letters, digits and `_ - . @`.
    pub fn new(name: &str, value: &str) -> Result<Self, Error> {
        Self::parse(&format!("{name}:{value}"))
    }

    /// An attribute from its `name:value` text.
    ///
    /// # Errors
    /// As [`Attribute::new`]; positions are byte offsets into `token`.
    pub fn parse(token: &str) -> Result<Self, Error> {
        if let Some((position, found)) = token
            .char_indices()
            .find(|&(_, c)| c != ':' && !(c.is_ascii() && is_attribute_byte(c as u8)))
        {
            return Err(Error::InvalidCharacter { position, found });
        }
        Self::from_word(token, 0)
    }

    /// Classifies a word already known to contain only attribute bytes and `:`. `offset` is the
    /// word's position in the whole input, for errors.
    fn from_word(word: &str, offset: usize) -> Result<Self, Error> {
        let invalid = |at: usize, reason| Error::InvalidAttribute {
            position: offset + at,
            token: word.to_owned(),
            reason,
        };
        let Some(colon) = word.find(':') else {
            return Err(invalid(
                0,
                "missing ':' (attributes are written name:value)",
            ));
        };
        if colon == 0 {
            return Err(invalid(0, "empty attribute name"));
        }
        if colon + 1 == word.len() {
            return Err(invalid(colon + 1, "empty attribute value"));
        }
        if let Some(second) = word[colon + 1..].find(':') {
            return Err(invalid(
                colon + 1 + second,
                "more than one ':' in attribute",
            ));
        }
        Ok(Self {
            text: word.to_owned(),
            colon,
        })
    }

    /// The part before the `:`.
    pub fn name(&self) -> &str {
        &self.text[..self.colon]
    }

    /// The part after the `:`.
    pub fn value(&self) -> &str {
        &self.text[self.colon + 1..]
    }

    /// The `name:value` text.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for Attribute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl FromStr for Attribute {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        Self::parse(s)
    }
}

impl serde::Serialize for Attribute {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

impl<'de> serde::Deserialize<'de> for Attribute {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// The attributes a caller holds; a policy is evaluated against one of these.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct AttributeSet(BTreeSet<Attribute>);

impl AttributeSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an attribute; returns whether it was new.
    pub fn insert(&mut self, attribute: Attribute) -> bool {
        self.0.insert(attribute)
    }

    /// Whether the set holds `attribute`.
    pub fn contains(&self, attribute: &Attribute) -> bool {
        self.0.contains(attribute)
    }

    /// Whether the set holds the attribute whose text is `name:value`.
    pub fn contains_str(&self, attribute: &str) -> bool {
        Attribute::parse(attribute).is_ok_and(|a| self.0.contains(&a))
    }

    /// Number of attributes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The attributes in sorted order.
    pub fn iter(&self) -> impl Iterator<Item = &Attribute> + '_ {
        self.0.iter()
    }

    /// The values of every attribute called `name`, in sorted order.
    pub fn values_of<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |a| a.name() == name)
            .map(Attribute::value)
    }
}

impl FromIterator<Attribute> for AttributeSet {
    fn from_iter<I: IntoIterator<Item = Attribute>>(iter: I) -> Self {
        Self(iter.into_iter().collect())
    }
}

impl Extend<Attribute> for AttributeSet {
    fn extend<I: IntoIterator<Item = Attribute>>(&mut self, iter: I) {
        self.0.extend(iter);
    }
}

impl IntoIterator for AttributeSet {
    type Item = Attribute;
    type IntoIter = std::collections::btree_set::IntoIter<Attribute>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<'a> IntoIterator for &'a AttributeSet {
    type Item = &'a Attribute;
    type IntoIter = std::collections::btree_set::Iter<'a, Attribute>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// A policy's syntax tree.
///
/// Well-formed trees (the ones the parser produces and [`Expr::validate`] accepts) have at least
/// two children in every `And` and `Or`, and `1 <= k <= children.len()` in every threshold.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Expr {
    /// Holds when the caller has the attribute.
    Attr(Attribute),
    /// Holds when every child holds.
    And(Vec<Expr>),
    /// Holds when any child holds.
    Or(Vec<Expr>),
    /// Holds when the child does not. Not expressible in CP-ABE: see [`Expr::is_monotone`].
    Not(Box<Expr>),
    /// Holds when at least `k` children hold.
    Threshold {
        /// How many children must hold.
        k: usize,
        /// The sub-policies.
        children: Vec<Expr>,
    },
}

impl Expr {
    /// Parses `text` exactly as written (no canonicalisation) under [`Limits::DEFAULT`].
    ///
    /// # Errors
    /// The first error in the text, with its byte position.
    pub fn parse(text: &str) -> Result<Self, Error> {
        Self::parse_with_limits(text, Limits::DEFAULT)
    }

    /// Parses `text` exactly as written under `limits`.
    ///
    /// # Errors
    /// The first error in the text, with its byte position; [`Error::TooLong`],
    /// [`Error::TooDeep`] or [`Error::TooManyAttributes`] when `limits` are exceeded.
    pub fn parse_with_limits(text: &str, limits: Limits) -> Result<Self, Error> {
        if text.len() > limits.max_len {
            return Err(Error::TooLong {
                length: text.len(),
                max: limits.max_len,
            });
        }
        let mut parser = Parser {
            lexer: Lexer {
                input: text,
                pos: 0,
            },
            peeked: None,
            limits,
            attributes: 0,
        };
        let expr = parser.chain(0)?;
        let next = parser.next()?;
        match next.tok {
            Tok::End => Ok(expr),
            _ => Err(unexpected(&next, Expected::OperatorOrEnd)),
        }
    }

    /// Whether the tree holds for a caller with `attributes`.
    pub fn evaluate(&self, attributes: &AttributeSet) -> bool {
        self.evaluate_with(&|a| attributes.contains(a))
    }

    /// Whether the tree holds when exactly the attributes for which `has` returns true are held.
    pub fn evaluate_with(&self, has: &dyn Fn(&Attribute) -> bool) -> bool {
        match self {
            Self::Attr(a) => has(a),
            Self::And(children) => children.iter().all(|c| c.evaluate_with(has)),
            Self::Or(children) => children.iter().any(|c| c.evaluate_with(has)),
            Self::Not(child) => !child.evaluate_with(has),
            Self::Threshold { k, children } => {
                if *k == 0 {
                    return true;
                }
                let mut held = 0usize;
                for child in children {
                    if child.evaluate_with(has) {
                        held += 1;
                        if held >= *k {
                            return true;
                        }
                    }
                }
                false
            }
        }
    }

    /// Whether the tree is free of `NOT`. Only monotone policies can be enforced by CP-ABE
    /// (FAME): a key cannot prove the *absence* of an attribute, so the encryption layer must
    /// refuse the others.
    pub fn is_monotone(&self) -> bool {
        match self {
            Self::Attr(_) => true,
            Self::Not(_) => false,
            Self::And(children) | Self::Or(children) | Self::Threshold { children, .. } => {
                children.iter().all(Self::is_monotone)
            }
        }
    }

    /// Every attribute the tree names, each once, in sorted order.
    pub fn attributes(&self) -> BTreeSet<&Attribute> {
        let mut out = BTreeSet::new();
        self.collect_attributes(&mut out);
        out
    }

    fn collect_attributes<'a>(&'a self, out: &mut BTreeSet<&'a Attribute>) {
        match self {
            Self::Attr(a) => {
                out.insert(a);
            }
            Self::Not(child) => child.collect_attributes(out),
            Self::And(children) | Self::Or(children) | Self::Threshold { children, .. } => {
                for child in children {
                    child.collect_attributes(out);
                }
            }
        }
    }

    /// Checks that the tree is well-formed (see [`Expr`]), so that its text parses back to it.
    ///
    /// # Errors
    /// [`Error::MalformedExpr`] naming the first problem found.
    pub fn validate(&self) -> Result<(), Error> {
        match self {
            Self::Attr(_) => Ok(()),
            Self::Not(child) => child.validate(),
            Self::And(children) | Self::Or(children) => {
                if children.len() < 2 {
                    return Err(Error::MalformedExpr {
                        reason: "AND and OR need at least two children",
                    });
                }
                children.iter().try_for_each(Self::validate)
            }
            Self::Threshold { k, children } => {
                if *k == 0 || *k > children.len() {
                    return Err(Error::MalformedExpr {
                        reason: "threshold needs 1 <= k <= number of children",
                    });
                }
                children.iter().try_for_each(Self::validate)
            }
        }
    }

    /// The canonical form: equivalent spellings of a policy become equal trees with equal text.
    ///
    /// Applied bottom-up, exactly these rewrites, each of which preserves the meaning:
    ///
    /// 1. `NOT NOT p` becomes `p`.
    /// 2. A threshold `1 of (...)` becomes an `OR`, and `n of (...)` over `n` children an `AND`.
    /// 3. Nested `AND`s are flattened into their parent `AND`, nested `OR`s into their parent
    ///    `OR` (associativity): `(a AND b) AND c` becomes `a AND b AND c`.
    /// 4. Duplicate children of an `AND` or `OR` are removed (idempotence); one left alone
    ///    replaces its parent: `a OR a` becomes `a`.
    /// 5. Children of `AND`, `OR` and thresholds are sorted (commutativity) by kind — attributes,
    ///    then `NOT`, thresholds, `AND`, `OR` — and within a kind by the bytes of their canonical
    ///    text.
    ///
    /// Nothing else is rewritten. In particular thresholds keep duplicate children (they count),
    /// and there is no De Morgan, distribution, absorption (`a OR (a AND b)` stays) or
    /// contradiction detection. So equal canonical forms imply equivalent policies, but two
    /// equivalent policies may still differ. Canonicalising is idempotent.
    #[must_use]
    pub fn canonical(&self) -> Self {
        match self {
            Self::Attr(_) => self.clone(),
            Self::Not(child) => match child.canonical() {
                Self::Not(inner) => *inner,
                other => Self::Not(Box::new(other)),
            },
            Self::And(children) => {
                Self::canonical_junction(true, children.iter().map(Self::canonical))
            }
            Self::Or(children) => {
                Self::canonical_junction(false, children.iter().map(Self::canonical))
            }
            Self::Threshold { k, children } => {
                let canon = children.iter().map(Self::canonical);
                if *k == 1 {
                    Self::canonical_junction(false, canon)
                } else if *k == children.len() {
                    Self::canonical_junction(true, canon)
                } else {
                    let mut keyed: Vec<_> = canon.map(|c| (c.sort_key(), c)).collect();
                    keyed.sort_by(|a, b| a.0.cmp(&b.0));
                    Self::Threshold {
                        k: *k,
                        children: keyed.into_iter().map(|(_, c)| c).collect(),
                    }
                }
            }
        }
    }

    /// Builds a canonical `AND` (`and == true`) or `OR` from canonical children.
    fn canonical_junction(and: bool, children: impl Iterator<Item = Self>) -> Self {
        let mut flat = Vec::new();
        for child in children {
            match child {
                Self::And(grand) if and => flat.extend(grand),
                Self::Or(grand) if !and => flat.extend(grand),
                other => flat.push(other),
            }
        }
        let mut keyed: Vec<_> = flat.into_iter().map(|c| (c.sort_key(), c)).collect();
        keyed.sort_by(|a, b| a.0.cmp(&b.0));
        keyed.dedup_by(|a, b| a.0 == b.0);
        let mut children: Vec<Self> = keyed.into_iter().map(|(_, c)| c).collect();
        match children.len() {
            1 => children.remove(0),
            _ if and => Self::And(children),
            _ => Self::Or(children),
        }
    }

    /// Sort key of a canonical child: kind rank, then text. Text is injective on well-formed
    /// trees (it parses back), so equal keys mean equal children.
    fn sort_key(&self) -> (u8, String) {
        let rank = match self {
            Self::Attr(_) => 0,
            Self::Not(_) => 1,
            Self::Threshold { .. } => 2,
            Self::And(_) => 3,
            Self::Or(_) => 4,
        };
        (rank, self.to_string())
    }

    /// Writes `child` as an operand of AND, OR or NOT: parenthesised if it is itself an AND or OR.
    fn fmt_operand(child: &Self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match child {
            Self::And(_) | Self::Or(_) => write!(f, "({child})"),
            _ => write!(f, "{child}"),
        }
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Attr(a) => f.write_str(a.as_str()),
            Self::And(children) | Self::Or(children) => {
                let sep = if matches!(self, Self::And(_)) {
                    " AND "
                } else {
                    " OR "
                };
                for (i, child) in children.iter().enumerate() {
                    if i > 0 {
                        f.write_str(sep)?;
                    }
                    Self::fmt_operand(child, f)?;
                }
                Ok(())
            }
            Self::Not(child) => {
                f.write_str("NOT ")?;
                Self::fmt_operand(child, f)
            }
            Self::Threshold { k, children } => {
                write!(f, "{k} of (")?;
                for (i, child) in children.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{child}")?;
                }
                f.write_str(")")
            }
        }
    }
}

impl FromStr for Expr {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        Self::parse(s)
    }
}

/// A validated, canonical policy: what contracts store, compare and evaluate, and what the
/// CP-ABE layer encrypts under (after checking [`Policy::is_monotone`]).
///
/// Equality, hashing, `Display` and serde all use the canonical text.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Policy {
    /// Canonical text (first, so ordering is by text).
    text: String,
    /// Canonical tree.
    expr: Expr,
}

impl Policy {
    /// Parses and canonicalises `text` under [`Limits::DEFAULT`].
    ///
    /// # Errors
    /// As [`Expr::parse`].
    pub fn parse(text: &str) -> Result<Self, Error> {
        Self::parse_with_limits(text, Limits::DEFAULT)
    }

    /// Parses and canonicalises `text` under `limits`. The canonical text is checked against
    /// the same limits, so a stored policy always parses back under them.
    ///
    /// # Errors
    /// As [`Expr::parse_with_limits`].
    pub fn parse_with_limits(text: &str, limits: Limits) -> Result<Self, Error> {
        Self::from_canonical(Expr::parse_with_limits(text, limits)?.canonical(), limits)
    }

    /// A policy from a hand-built tree, checked and canonicalised.
    ///
    /// # Errors
    /// [`Error::MalformedExpr`] if the tree is not well-formed; a limit error if its canonical
    /// text exceeds `limits`.
    pub fn from_expr(expr: &Expr, limits: Limits) -> Result<Self, Error> {
        expr.validate()?;
        Self::from_canonical(expr.canonical(), limits)
    }

    fn from_canonical(expr: Expr, limits: Limits) -> Result<Self, Error> {
        let text = expr.to_string();
        // Canonicalising never deepens a policy nor adds attributes, but it can lengthen the text
        // (`2 of (a, b)` becomes `a AND b`, children of a former threshold gain parentheses).
        // Re-parsing enforces every limit on the text actually stored.
        Expr::parse_with_limits(&text, limits)?;
        Ok(Self { text, expr })
    }

    /// The canonical tree.
    pub fn expr(&self) -> &Expr {
        &self.expr
    }

    /// The canonical text.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether the policy holds for a caller with `attributes`.
    pub fn evaluate(&self, attributes: &AttributeSet) -> bool {
        self.expr.evaluate(attributes)
    }

    /// Whether the policy is free of `NOT` (required by CP-ABE).
    pub fn is_monotone(&self) -> bool {
        self.expr.is_monotone()
    }

    /// Every attribute the policy names, each once, in sorted order.
    pub fn attributes(&self) -> BTreeSet<&Attribute> {
        self.expr.attributes()
    }
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl FromStr for Policy {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        Self::parse(s)
    }
}

impl serde::Serialize for Policy {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

impl<'de> serde::Deserialize<'de> for Policy {
    /// Parses under [`Limits::DEFAULT`], so stored or received policies are bounded too.
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

// ---------------------------------------------------------------------------------------------
// Lexer and parser.

#[derive(Debug)]
enum Tok {
    LParen,
    RParen,
    Comma,
    And,
    Or,
    Not,
    Of,
    /// A run of digits (saturating at `usize::MAX`).
    Number(usize),
    Attr(Attribute),
    End,
}

#[derive(Debug)]
struct Token {
    tok: Tok,
    pos: usize,
}

fn describe(tok: &Tok) -> String {
    match tok {
        Tok::LParen => "'('".into(),
        Tok::RParen => "')'".into(),
        Tok::Comma => "','".into(),
        Tok::And => "keyword AND".into(),
        Tok::Or => "keyword OR".into(),
        Tok::Not => "keyword NOT".into(),
        Tok::Of => "keyword 'of'".into(),
        Tok::Number(n) => format!("number {n}"),
        Tok::Attr(a) => format!("attribute {a}"),
        Tok::End => "end of input".into(),
    }
}

fn unexpected(token: &Token, expected: Expected) -> Error {
    Error::UnexpectedToken {
        position: token.pos,
        expected,
        found: describe(&token.tok),
    }
}

struct Lexer<'a> {
    input: &'a str,
    pos: usize,
}

impl Lexer<'_> {
    fn next_token(&mut self) -> Result<Token, Error> {
        let bytes = self.input.as_bytes();
        while self.pos < bytes.len() && matches!(bytes[self.pos], b' ' | b'\t' | b'\r' | b'\n') {
            self.pos += 1;
        }
        let start = self.pos;
        let Some(&b) = bytes.get(start) else {
            return Ok(Token {
                tok: Tok::End,
                pos: start,
            });
        };
        let single = match b {
            b'(' => Some(Tok::LParen),
            b')' => Some(Tok::RParen),
            b',' => Some(Tok::Comma),
            _ => None,
        };
        if let Some(tok) = single {
            self.pos += 1;
            return Ok(Token { tok, pos: start });
        }
        while self.pos < bytes.len()
            && (is_attribute_byte(bytes[self.pos]) || bytes[self.pos] == b':')
        {
            self.pos += 1;
        }
        if self.pos == start {
            // Not a token start: report the whole (possibly multi-byte) character.
            let found = self.input[start..].chars().next().unwrap_or('\u{fffd}');
            return Err(Error::InvalidCharacter {
                position: start,
                found,
            });
        }
        let word = &self.input[start..self.pos];
        // A word must end at whitespace, punctuation or the end; anything else is a bad character
        // inside it, reported where it is rather than as a malformed word.
        if let Some(found) = self.input[self.pos..].chars().next()
            && !matches!(found, ' ' | '\t' | '\r' | '\n' | '(' | ')' | ',')
        {
            return Err(Error::InvalidCharacter {
                position: self.pos,
                found,
            });
        }
        let tok = if word.contains(':') {
            Tok::Attr(Attribute::from_word(word, start)?)
        } else if word.eq_ignore_ascii_case("and") {
            Tok::And
        } else if word.eq_ignore_ascii_case("or") {
            Tok::Or
        } else if word.eq_ignore_ascii_case("not") {
            Tok::Not
        } else if word.eq_ignore_ascii_case("of") {
            Tok::Of
        } else if word.bytes().all(|d| d.is_ascii_digit()) {
            Tok::Number(word.bytes().fold(0usize, |n, d| {
                n.saturating_mul(10).saturating_add(usize::from(d - b'0'))
            }))
        } else {
            return Err(Error::InvalidAttribute {
                position: start,
                token: word.to_owned(),
                reason: "missing ':' (attributes are written name:value)",
            });
        };
        Ok(Token { tok, pos: start })
    }
}

struct Parser<'a> {
    lexer: Lexer<'a>,
    peeked: Option<Token>,
    limits: Limits,
    attributes: usize,
}

impl Parser<'_> {
    fn next(&mut self) -> Result<Token, Error> {
        match self.peeked.take() {
            Some(t) => Ok(t),
            None => self.lexer.next_token(),
        }
    }

    fn peek(&mut self) -> Result<&Token, Error> {
        let token = match self.peeked.take() {
            Some(t) => t,
            None => self.lexer.next_token()?,
        };
        Ok(self.peeked.insert(token))
    }

    /// Checks that entering one more level at `pos` stays within the depth limit.
    fn descend(&self, depth: usize, pos: usize) -> Result<usize, Error> {
        let deeper = depth + 1;
        if deeper > self.limits.max_depth {
            return Err(Error::TooDeep {
                position: pos,
                max: self.limits.max_depth,
            });
        }
        Ok(deeper)
    }

    /// `chain := unary (AND unary)* | unary (OR unary)*`
    fn chain(&mut self, depth: usize) -> Result<Expr, Error> {
        let first = self.unary(depth)?;
        let mut op: Option<bool> = None; // Some(true) = AND, Some(false) = OR
        let mut children = vec![first];
        loop {
            let (is_and, pos) = match self.peek()? {
                Token { tok: Tok::And, pos } => (true, *pos),
                Token { tok: Tok::Or, pos } => (false, *pos),
                _ => break,
            };
            if op.is_some_and(|o| o != is_and) {
                return Err(Error::MixedOperators { position: pos });
            }
            op = Some(is_and);
            self.next()?;
            children.push(self.unary(depth)?);
        }
        Ok(match op {
            None => children.remove(0),
            Some(true) => Expr::And(children),
            Some(false) => Expr::Or(children),
        })
    }

    /// `unary := NOT unary | primary`
    fn unary(&mut self, depth: usize) -> Result<Expr, Error> {
        let token = self.next()?;
        match token.tok {
            Tok::Not => {
                let deeper = self.descend(depth, token.pos)?;
                Ok(Expr::Not(Box::new(self.unary(deeper)?)))
            }
            Tok::Attr(a) => {
                self.attributes += 1;
                if self.attributes > self.limits.max_attributes {
                    return Err(Error::TooManyAttributes {
                        position: token.pos,
                        max: self.limits.max_attributes,
                    });
                }
                Ok(Expr::Attr(a))
            }
            Tok::LParen => {
                let deeper = self.descend(depth, token.pos)?;
                let inner = self.chain(deeper)?;
                let close = self.next()?;
                match close.tok {
                    Tok::RParen => Ok(inner),
                    _ => Err(unexpected(&close, Expected::OperatorOrCloseParen)),
                }
            }
            Tok::Number(k) => self.threshold(k, token.pos, depth),
            _ => Err(unexpected(&token, Expected::Operand)),
        }
    }

    /// `k of ( chain (, chain)* )`, the count `k` at `k_pos` already consumed.
    fn threshold(&mut self, k: usize, k_pos: usize, depth: usize) -> Result<Expr, Error> {
        let of = self.next()?;
        if !matches!(of.tok, Tok::Of) {
            return Err(unexpected(&of, Expected::Of));
        }
        let open = self.next()?;
        if !matches!(open.tok, Tok::LParen) {
            return Err(unexpected(&open, Expected::OpenParen));
        }
        let deeper = self.descend(depth, open.pos)?;
        let mut children = vec![self.chain(deeper)?];
        loop {
            let sep = self.next()?;
            match sep.tok {
                Tok::Comma => children.push(self.chain(deeper)?),
                Tok::RParen => break,
                _ => return Err(unexpected(&sep, Expected::OperatorCommaOrCloseParen)),
            }
        }
        if k == 0 || k > children.len() {
            return Err(Error::InvalidThreshold {
                position: k_pos,
                k,
                n: children.len(),
            });
        }
        Ok(Expr::Threshold { k, children })
    }
}
