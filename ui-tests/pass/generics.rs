//! Generic functions with where clauses and lifetimes; `impl Trait` arguments and returns.
use std::fmt::Display;

use flujo::pipeline_step;

#[pipeline_step]
fn first<'a, T>(items: &'a [T]) -> Option<&'a T>
where
    T: Display + 'a,
{
    items.first()
}

#[pipeline_step(retries = 1, backoff_ms = 0)]
fn render<T: Display + Clone>(item: T, suffix: impl AsRef<str> + Clone) -> Result<String, String> {
    Ok(format!("{item}{}", suffix.as_ref()))
}

#[pipeline_step]
fn words(text: &str) -> impl Iterator<Item = &str> + '_ {
    text.split(' ')
}

#[pipeline_step(retries = 1, backoff_ms = 0)]
fn sum((a, mut b): (u32, u32), _: u8) -> Result<u32, String> {
    b += a;
    Ok(b)
}

fn main() {
    assert_eq!(first(&[1, 2]), Some(&1));
    assert_eq!(render(3, "!").unwrap(), "3!");
    assert_eq!(words("a b").count(), 2);
    assert_eq!(sum((1, 2), 0), Ok(3));
}
