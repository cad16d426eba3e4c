//! Where a durable ledger is: a SQLite file, or a PostgreSQL database named by a URL whose
//! password is a secret.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::core::percent::percent_decode;

/// A durable cost ledger (`FLUJO_COST_LEDGER`, `cost_ledger`): a SQLite file (feature
/// `sqlite`), or a PostgreSQL database (feature `postgres`) named by a `postgres://` or
/// `postgresql://` URL. `Debug` and `Display` never show the URL's password.
#[derive(Clone, PartialEq, Eq)]
pub enum LedgerLocation {
    /// A SQLite file, created if missing.
    File(PathBuf),
    /// A PostgreSQL database.
    Postgres(PostgresUrl),
}

impl LedgerLocation {
    /// A `postgres://` or `postgresql://` URL is a database; anything else a file.
    pub fn parse(text: &str) -> LedgerLocation {
        PostgresUrl::parse(text).map_or_else(
            || LedgerLocation::File(PathBuf::from(text)),
            LedgerLocation::Postgres,
        )
    }
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
            || LedgerLocation::File(path.to_owned()),
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
        match self {
            LedgerLocation::File(path) => path.display().fmt(f),
            LedgerLocation::Postgres(url) => url.fmt(f),
        }
    }
}

impl fmt::Debug for LedgerLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LedgerLocation::File(path) => f.debug_tuple("File").field(path).finish(),
            LedgerLocation::Postgres(url) => f.debug_tuple("Postgres").field(url).finish(),
        }
    }
}

/// A PostgreSQL connection URL (`postgres://user:password@host:port/database?options`). The
/// password (in the user part, or a `password=` option) is a secret: `Debug`, `Display` and
/// every error flujo makes of the URL show `***` in its place.
#[derive(Clone, PartialEq, Eq)]
pub struct PostgresUrl {
    url: String,
    redacted: String,
    /// The password as written and as decoded, to scrub from the driver's messages.
    passwords: Vec<String>,
}

impl PostgresUrl {
    /// `text` when it is a `postgres://` or `postgresql://` URL (its other parts are checked
    /// when the ledger opens).
    pub fn parse(text: &str) -> Option<PostgresUrl> {
        let text = text.trim();
        let scheme_end = ["postgres://", "postgresql://"]
            .iter()
            .find(|scheme| {
                text.get(..scheme.len())
                    .is_some_and(|start| start.eq_ignore_ascii_case(scheme))
            })?
            .len();
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
        let decoded: Vec<String> = passwords
            .iter()
            .filter(|password| password.contains('%'))
            .filter_map(|password| percent_decode(password))
            .collect();
        passwords.extend(decoded);
        passwords.retain(|password| !password.is_empty());
        Some(PostgresUrl {
            url: text.to_owned(),
            redacted,
            passwords,
        })
    }

    /// The URL with `***` for its password.
    pub fn redacted(&self) -> &str {
        &self.redacted
    }

    /// The URL itself, for the driver.
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub(crate) fn expose(&self) -> &str {
        &self.url
    }

    /// `message` (from the driver, which may quote what it was given) without the password.
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub(crate) fn scrub(&self, message: &str) -> String {
        let mut message = message.to_owned();
        let mut longest_first: Vec<&str> = self.passwords.iter().map(String::as_str).collect();
        longest_first.sort_by_key(|password| std::cmp::Reverse(password.len()));
        for password in longest_first {
            message = message.replace(password, "***");
        }
        message
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
            assert_eq!(parsed.redacted(), shown);
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
            LedgerLocation::File("costs.sqlite".into())
        );
    }
}
