//! The match rules of the `genai-prices` data: which names a model or provider rule takes,
//! and which item of an array an extractor's path steps into.

use serde::Deserialize;

use crate::money::PricingError;

/// An error in the data itself (not in a price file of the application).
pub(crate) fn data_error(message: String) -> PricingError {
    PricingError::File {
        file: "genai-prices data".to_owned(),
        line: 0,
        message,
    }
}

/// A match rule of the data.
#[derive(Debug)]
pub(crate) enum Clause {
    Equals(String),
    StartsWith(String),
    EndsWith(String),
    Contains(String),
    Regex(Box<LazyRegex>),
    Or(Vec<Clause>),
    And(Vec<Clause>),
}

impl Clause {
    /// `text` is lower case, as the package lowers every name before matching (a rule of an
    /// extractor's path keeps its case, and so does the text it is matched against).
    pub(crate) fn matches(&self, text: &str) -> bool {
        match self {
            Clause::Equals(value) => text == value,
            Clause::StartsWith(value) => text.starts_with(value.as_str()),
            Clause::EndsWith(value) => text.ends_with(value.as_str()),
            Clause::Contains(value) => text.contains(value.as_str()),
            Clause::Regex(regex) => regex.is_match(text),
            Clause::Or(clauses) => clauses.iter().any(|c| c.matches(text)),
            Clause::And(clauses) => clauses.iter().all(|c| c.matches(text)),
        }
    }
}

/// A regular expression of a match rule: checked when the data is read, compiled when a name
/// first reaches it (compiling the data's 73 patterns would double the time to read it).
#[derive(Debug)]
pub(crate) struct LazyRegex {
    pattern: String,
    compiled: std::sync::OnceLock<Option<fancy_regex::Regex>>,
}

impl LazyRegex {
    fn new(pattern: String, at: &dyn Fn() -> String) -> Result<LazyRegex, PricingError> {
        fancy_regex::Expr::parse_tree(&pattern)
            .map_err(|error| data_error(format!("{}: match regex {pattern:?}: {error}", at())))?;
        Ok(LazyRegex {
            pattern,
            compiled: std::sync::OnceLock::new(),
        })
    }

    /// Python's `re.search`. A pattern that parses but does not compile, or that backtracks
    /// past its limit, matches nothing (never a panic).
    fn is_match(&self, text: &str) -> bool {
        self.compiled
            .get_or_init(|| fancy_regex::Regex::new(&self.pattern).ok())
            .as_ref()
            .is_some_and(|regex| regex.is_match(text).unwrap_or(false))
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
pub(crate) enum RawClause {
    Equals { equals: String },
    StartsWith { starts_with: String },
    EndsWith { ends_with: String },
    Contains { contains: String },
    Regex { regex: String },
    Or { or: Vec<RawClause> },
    And { and: Vec<RawClause> },
}

impl RawClause {
    /// A rule for model and provider names, which the package lowers before matching.
    pub(crate) fn build(self, at: &dyn Fn() -> String) -> Result<Clause, PricingError> {
        self.build_with(at, &|s: String| s.to_lowercase())
    }

    /// A rule that matches text as written (an extractor's array item: `modality = TEXT`).
    pub(crate) fn build_exact(self, at: &dyn Fn() -> String) -> Result<Clause, PricingError> {
        self.build_with(at, &|s| s)
    }

    fn build_with(
        self,
        at: &dyn Fn() -> String,
        lower: &dyn Fn(String) -> String,
    ) -> Result<Clause, PricingError> {
        Ok(match self {
            RawClause::Equals { equals } => Clause::Equals(lower(equals)),
            RawClause::StartsWith { starts_with } => Clause::StartsWith(lower(starts_with)),
            RawClause::EndsWith { ends_with } => Clause::EndsWith(lower(ends_with)),
            RawClause::Contains { contains } => Clause::Contains(lower(contains)),
            RawClause::Regex { regex } => Clause::Regex(Box::new(LazyRegex::new(regex, at)?)),
            RawClause::Or { or } => Clause::Or(
                or.into_iter()
                    .map(|c| c.build_with(at, lower))
                    .collect::<Result<_, _>>()?,
            ),
            RawClause::And { and } => Clause::And(
                and.into_iter()
                    .map(|c| c.build_with(at, lower))
                    .collect::<Result<_, _>>()?,
            ),
        })
    }
}
