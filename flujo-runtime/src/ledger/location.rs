//! Where a durable ledger is: a SQLite file, or a PostgreSQL database named by a URL or a
//! libpq `key=value` string whose password is a secret. Text is parsed, never guessed: a
//! connection string of another kind is refused (naming its form, never its secret), and
//! nothing that holds a password ever becomes a file name.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::core::percent::percent_decode;
use crate::ledger::error::CostError;

/// A durable cost ledger (`FLUJO_COST_LEDGER`, `cost_ledger`): a SQLite file (feature
/// `sqlite`), or a PostgreSQL database (feature `postgres`) named by a `postgres://` or
/// `postgresql://` URL or a libpq `key=value` string (`host=db user=flujo dbname=costs`).
/// Text that names neither (a `jdbc:postgresql://` or `mysql://` URL, `user:password@host`
/// without a scheme, an ADO.NET string, ...) is kept, with its secrets redacted, and opening a
/// ledger there is an error saying what to write instead. `Debug` and `Display` never show a
/// password.
#[derive(Clone, PartialEq, Eq)]
pub struct LedgerLocation(pub(crate) Location);

/// What a [`LedgerLocation`] names: private, so that a new kind of ledger is not a breaking
/// change.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum Location {
    /// A SQLite file, created if missing.
    File(PathBuf),
    /// A PostgreSQL database.
    Postgres(PostgresUrl),
    /// Text that names neither.
    Unsupported(UnsupportedLocation),
}

/// A ledger location flujo refuses, and why.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct UnsupportedLocation {
    redacted: String,
    reason: &'static str,
}

impl fmt::Display for UnsupportedLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted)
    }
}

impl fmt::Debug for UnsupportedLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.redacted)
    }
}

/// The keywords of libpq's `key=value` connection strings (PostgreSQL's "Parameter Key
/// Words"): text that starts with one of them and `=` is a connection string, not a file.
const LIBPQ_KEYWORDS: [&str; 31] = [
    "host",
    "hostaddr",
    "port",
    "dbname",
    "user",
    "password",
    "passfile",
    "require_auth",
    "channel_binding",
    "connect_timeout",
    "client_encoding",
    "options",
    "application_name",
    "fallback_application_name",
    "keepalives",
    "keepalives_idle",
    "keepalives_interval",
    "keepalives_count",
    "tcp_user_timeout",
    "replication",
    "gssencmode",
    "sslmode",
    "sslnegotiation",
    "sslcompression",
    "sslcert",
    "sslkey",
    "sslrootcert",
    "sslcrl",
    "service",
    "target_session_attrs",
    "load_balance_hosts",
];

const POSTGRES_SCHEMES: [&str; 2] = ["postgres://", "postgresql://"];

/// What to write instead of another URL scheme, by what the scheme names.
fn scheme_reason(scheme: &str) -> &'static str {
    let scheme = scheme.to_ascii_lowercase();
    if scheme.contains("postgres") {
        "FLUJO_COST_LEDGER (cost_ledger) reads postgres:// and postgresql:// URLs (and libpq \
         key=value strings), not this form: write it as \
         postgres://user:password@host:port/database, without a `jdbc:` prefix or a `+driver` \
         suffix"
    } else if scheme == "sqlite" || scheme == "file" {
        "a SQLite ledger is named by its file's path, e.g. FLUJO_COST_LEDGER=costs.sqlite, not \
         by a URL"
    } else {
        "the cost ledger is a SQLite file (a path, e.g. costs.sqlite) or a PostgreSQL \
         database (postgres://user:password@host:port/database); this URL names neither"
    }
}

impl LedgerLocation {
    /// `text` as a ledger location: a `postgres://` or `postgresql://` URL or a libpq
    /// `key=value` string is a database; another URL, or text holding a password, is kept
    /// as a location flujo refuses (opening a ledger there is an error saying what to write
    /// instead); anything else a file.
    pub fn parse(text: &str) -> LedgerLocation {
        if let Some(url) = PostgresUrl::parse(text) {
            return LedgerLocation(Location::Postgres(url));
        }
        let trimmed = text.trim();
        let refuse = |reason| {
            LedgerLocation(Location::Unsupported(UnsupportedLocation {
                redacted: redact_any(trimmed),
                reason,
            }))
        };
        if let Some((scheme, _)) = trimmed.split_once("://") {
            return refuse(scheme_reason(scheme));
        }
        let lower = trimmed.to_ascii_lowercase();
        if lower.contains("password=") || lower.contains("pwd=") || user_info_end(trimmed).is_some()
        {
            return refuse(
                "this looks like a connection string holding a password, not a file name: \
                 a PostgreSQL ledger is named by postgres://user:password@host:port/database \
                 (or a libpq key=value string), a SQLite ledger by its file's path",
            );
        }
        LedgerLocation(Location::File(PathBuf::from(text)))
    }

    /// Why a ledger cannot be opened here, when it cannot.
    pub(crate) fn refusal(&self) -> Option<CostError> {
        match &self.0 {
            Location::Unsupported(unsupported) => Some(CostError::Ledger {
                path: unsupported.redacted.clone(),
                reason: unsupported.reason.to_owned(),
            }),
            Location::Postgres(url) => url.refusal.map(|reason| CostError::Ledger {
                path: url.redacted.clone(),
                reason: reason.to_owned(),
            }),
            Location::File(_) => None,
        }
    }
}

/// Where `user:password@` ends in text without a scheme (`flujo:pw@db:5432/costs`), when it
/// has that shape: before any `/`, a `:` and then an `@`.
fn user_info_end(text: &str) -> Option<usize> {
    let authority = &text[..text.find('/').unwrap_or(text.len())];
    let at = authority.rfind('@')?;
    authority[..at].contains(':').then_some(at)
}

/// `text` with whatever may be a secret in it shown as `***`: a URL's password (user info
/// and `password=` options), `password=`/`pwd=` values of key-value forms, and `user:pass@`.
fn redact_any(text: &str) -> String {
    if let Some(scheme_end) = text.find("://").map(|at| at + 3) {
        return redact_url(text, scheme_end).0;
    }
    if let Some(at) = user_info_end(text) {
        let user = text[..at].split(':').next().unwrap_or("");
        return format!("{user}:***{}", &text[at..]);
    }
    redact_pairs(text, &[' ', ';', '&'])
}

/// `key=value` pairs separated by any of `separators`, each `password`/`pwd` value `***`
/// (up to the next separator).
fn redact_pairs(text: &str, separators: &[char]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('=') {
        let key_start = rest[..at].rfind(separators).map_or(0, |s| s + 1);
        let key = rest[key_start..at].trim().to_ascii_lowercase();
        out.push_str(&rest[..=at]);
        rest = &rest[at + 1..];
        if key == "password" || key == "pwd" {
            out.push_str("***");
            let end = rest.find(separators).unwrap_or(rest.len());
            rest = &rest[end..];
        }
    }
    out.push_str(rest);
    out
}

/// A URL with `***` for its password (in the user part, or a `password=` option), and the
/// passwords found (as written). `scheme_end` is where `://` ends.
fn redact_url(text: &str, scheme_end: usize) -> (String, Vec<String>) {
    let mut passwords = Vec::new();
    let mut redacted = text[..scheme_end].to_owned();
    let rest = &text[scheme_end..];
    // The user part ends at the last `@` (a password may hold any character), the host
    // at the path or the options after it.
    let host_start = rest.rfind('@').map_or(0, |at| at + 1);
    if host_start > 0 {
        let user_info = &rest[..host_start - 1];
        match user_info.split_once(':') {
            Some((user, password)) => {
                passwords.push(password.to_owned());
                redacted.push_str(user);
                redacted.push_str(":***@");
            }
            None => {
                redacted.push_str(user_info);
                redacted.push('@');
            }
        }
    }
    let authority_end = rest[host_start..]
        .find(['/', '?'])
        .map_or(rest.len(), |end| host_start + end);
    let query_start = rest[authority_end..].find('?').map(|q| authority_end + q);
    redacted.push_str(&rest[host_start..authority_end]);
    let path_end = query_start.unwrap_or(rest.len());
    redacted.push_str(&rest[authority_end..path_end]);
    if let Some(query) = query_start {
        redacted.push('?');
        let options: Vec<String> = rest[query + 1..]
            .split('&')
            .map(|option| match option.split_once('=') {
                Some((key, value)) if key.eq_ignore_ascii_case("password") => {
                    passwords.push(value.to_owned());
                    format!("{key}=***")
                }
                _ => option.to_owned(),
            })
            .collect();
        redacted.push_str(&options.join("&"));
    }
    (redacted, passwords)
}

/// The pairs of a libpq `key=value` string (values may be single-quoted, with `\'` and
/// `\\` escapes), as (key, value, where the value starts and ends in `text`); `None` when
/// it is not one.
fn libpq_pairs(text: &str) -> Option<Vec<(String, String, usize, usize)>> {
    let mut pairs = Vec::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    let skip_space = |mut i: usize| {
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        i
    };
    loop {
        i = skip_space(i);
        if i == bytes.len() {
            break;
        }
        let key_start = i;
        while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
            i += 1;
        }
        // libpq's keywords are lower case: `Host=...;Pwd=...` is another kind of string.
        let key = text[key_start..i].to_owned();
        i = skip_space(i);
        if key.is_empty() || bytes.get(i) != Some(&b'=') {
            return None;
        }
        i = skip_space(i + 1);
        let (value_start, mut value) = (i, String::new());
        if bytes.get(i) == Some(&b'\'') {
            i += 1;
            loop {
                match bytes.get(i) {
                    None => return None,
                    Some(b'\'') => {
                        i += 1;
                        break;
                    }
                    Some(b'\\') if i + 1 < bytes.len() => {
                        value.push(char::from(bytes[i + 1]));
                        i += 2;
                    }
                    Some(_) => {
                        let c = text[i..].chars().next()?;
                        value.push(c);
                        i += c.len_utf8();
                    }
                }
            }
        } else {
            while i < bytes.len() && !bytes[i].is_ascii_whitespace() {
                i += 1;
            }
            value.push_str(&text[value_start..i]);
        }
        pairs.push((key, value, value_start, i));
    }
    let first_is_keyword = pairs
        .first()
        .is_some_and(|(key, ..)| LIBPQ_KEYWORDS.contains(&key.as_str()));
    first_is_keyword.then_some(pairs)
}

impl From<&str> for LedgerLocation {
    fn from(text: &str) -> LedgerLocation {
        LedgerLocation::parse(text)
    }
}

impl From<String> for LedgerLocation {
    fn from(text: String) -> LedgerLocation {
        LedgerLocation::parse(&text)
    }
}

impl From<&Path> for LedgerLocation {
    fn from(path: &Path) -> LedgerLocation {
        path.to_str().map_or_else(
            || LedgerLocation(Location::File(path.to_owned())),
            LedgerLocation::parse,
        )
    }
}

impl From<PathBuf> for LedgerLocation {
    fn from(path: PathBuf) -> LedgerLocation {
        LedgerLocation::from(path.as_path())
    }
}

impl From<&PathBuf> for LedgerLocation {
    fn from(path: &PathBuf) -> LedgerLocation {
        LedgerLocation::from(path.as_path())
    }
}

impl fmt::Display for LedgerLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Location::File(path) => path.display().fmt(f),
            Location::Postgres(url) => url.fmt(f),
            Location::Unsupported(text) => text.fmt(f),
        }
    }
}

impl fmt::Debug for LedgerLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Location::File(path) => f.debug_tuple("File").field(path).finish(),
            Location::Postgres(url) => f.debug_tuple("Postgres").field(url).finish(),
            Location::Unsupported(text) => f.debug_tuple("Unsupported").field(text).finish(),
        }
    }
}

/// A PostgreSQL connection URL (`postgres://user:password@host:port/database?options`), or a
/// libpq `key=value` connection string (`host=db port=5432 user=flujo password=... dbname=costs`,
/// what `psql`, libpq and many tools take). The password (in the user part, a `password=`
/// option or pair) is a secret: `Debug`, `Display` and every error flujo makes of it show
/// `***` in its place.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct PostgresUrl {
    url: String,
    redacted: String,
    /// The password as written and as decoded, to scrub from the driver's messages.
    passwords: Vec<String>,
    /// Why the driver would read it differently from how it reads (it is refused).
    refusal: Option<&'static str>,
}

impl PostgresUrl {
    /// `text` when it is a `postgres://` or `postgresql://` URL or a libpq `key=value`
    /// string (its other parts are checked when the ledger opens).
    pub(crate) fn parse(text: &str) -> Option<PostgresUrl> {
        let text = text.trim();
        let Some(scheme) = POSTGRES_SCHEMES.iter().find(|scheme| {
            text.get(..scheme.len())
                .is_some_and(|start| start.eq_ignore_ascii_case(scheme))
        }) else {
            return PostgresUrl::parse_pairs(text);
        };
        let (redacted, mut passwords) = redact_url(text, scheme.len());
        // The driver ends the user part at the first `@`, the redaction at the last: with
        // an `@` left unencoded in a password they would name different hosts.
        let host_part = &text[scheme.len()..];
        let authority = &host_part[..host_part.rfind('@').unwrap_or(0)];
        let refusal = authority.contains('@').then_some(
            "the user name or password holds an `@` that is not percent-encoded, so the host \
             cannot be told apart from it: write `@` in the user name or password as %40 (and \
             `/` as %2F, `:` in the user name as %3A)",
        );
        let decoded: Vec<String> = passwords
            .iter()
            .filter(|password| password.contains('%'))
            .filter_map(|password| percent_decode(password))
            .collect();
        passwords.extend(decoded);
        passwords.retain(|password| !password.is_empty());
        // The driver knows the schemes in lower case only.
        let url = format!("{scheme}{host_part}");
        Some(PostgresUrl {
            url,
            redacted,
            passwords,
            refusal,
        })
    }

    /// A libpq `key=value` string.
    fn parse_pairs(text: &str) -> Option<PostgresUrl> {
        let pairs = libpq_pairs(text)?;
        let mut redacted = String::with_capacity(text.len());
        let mut passwords = Vec::new();
        let mut shown_to = 0;
        for (key, value, start, end) in pairs {
            if key == "password" {
                redacted.push_str(&text[shown_to..start]);
                redacted.push_str("***");
                shown_to = end;
                passwords.push(value);
                passwords.push(text[start..end].to_owned());
            }
        }
        redacted.push_str(&text[shown_to..]);
        passwords.retain(|password| !password.is_empty());
        Some(PostgresUrl {
            url: text.to_owned(),
            redacted,
            passwords,
            refusal: None,
        })
    }

    /// The URL itself, for the driver.
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub(crate) fn expose(&self) -> &str {
        &self.url
    }

    /// `message` (from the driver, which may quote what it was given) without the password.
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub(crate) fn scrub(&self, message: &str) -> String {
        crate::core::redact::hide(message, &self.passwords, "***").into_owned()
    }
}

impl fmt::Display for PostgresUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted)
    }
}

impl fmt::Debug for PostgresUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.redacted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_is_never_shown() {
        for (url, shown) in [
            (
                "postgres://flujo:s3cr%40t@db.internal:5432/costs?sslmode=disable",
                "postgres://flujo:***@db.internal:5432/costs?sslmode=disable",
            ),
            (
                "postgresql://db/costs?user=flujo&password=hunter2&application_name=x",
                "postgresql://db/costs?user=flujo&password=***&application_name=x",
            ),
            ("postgres://flujo@db/costs", "postgres://flujo@db/costs"),
            ("POSTGRES://a:b@c", "POSTGRES://a:***@c"),
        ] {
            let parsed = PostgresUrl::parse(url).unwrap();
            assert_eq!(parsed.to_string(), shown);
            assert_eq!(format!("{parsed:?}"), format!("{shown:?}"));
            let location = LedgerLocation::parse(url);
            assert!(!format!("{location:?} {location}").contains("s3cr"));
            assert!(!format!("{location:?} {location}").contains("hunter2"));
        }
        let url = PostgresUrl::parse("postgres://u:s3cr%40t@h/d").unwrap();
        assert_eq!(
            url.scrub("password s3cr@t and s3cr%40t rejected"),
            "password *** and *** rejected"
        );
        assert_eq!(
            LedgerLocation::parse("costs.sqlite"),
            LedgerLocation(Location::File("costs.sqlite".into()))
        );
    }

    #[test]
    fn every_form_is_parsed_as_what_it_is_and_shown_without_its_secret() {
        for (text, kind, shown) in [
            (
                "host=db port=5432 user=flujo password=hunter2 dbname=costs",
                "Postgres",
                "host=db port=5432 user=flujo password=*** dbname=costs",
            ),
            (
                "dbname=costs password = 'hun ter\\'2' host=db",
                "Postgres",
                "dbname=costs password = *** host=db",
            ),
            (
                "jdbc:postgresql://db:5432/costs?user=flujo&password=hunter2",
                "Unsupported",
                "jdbc:postgresql://db:5432/costs?user=flujo&password=***",
            ),
            (
                "postgresql+psycopg2://flujo:hunter2@db/costs",
                "Unsupported",
                "postgresql+psycopg2://flujo:***@db/costs",
            ),
            (
                "flujo:hunter2@db:5432/costs",
                "Unsupported",
                "flujo:***@db:5432/costs",
            ),
            (
                "Server=db;Database=costs;User Id=flujo;Password=hunter2;",
                "Unsupported",
                "Server=db;Database=costs;User Id=flujo;Password=***;",
            ),
            (
                "postgres://flujo:hun@ter2@db/costs",
                "Postgres",
                "postgres://flujo:***@db/costs",
            ),
            ("data/costs.sqlite", "File", "data/costs.sqlite"),
            ("costs=2026.sqlite", "File", "costs=2026.sqlite"),
        ] {
            let location = LedgerLocation::parse(text);
            let debug = format!("{location:?}");
            assert!(debug.starts_with(kind), "{text}: {debug}");
            assert_eq!(location.to_string(), shown, "{text}");
            assert!(
                !debug.contains("hunter2") && !debug.contains("ter2"),
                "{debug}"
            );
            if let Some(refusal) = location.refusal() {
                let message = refusal.to_string();
                assert!(!message.contains("ter2"), "{message}");
            }
        }
        // An `@` in a password that is not encoded: refused, naming the fix.
        let ambiguous = LedgerLocation::parse("postgres://flujo:hun@ter2@db/costs");
        let refusal = ambiguous.refusal().unwrap().to_string();
        assert!(refusal.contains("%40"), "{refusal}");
    }
}
