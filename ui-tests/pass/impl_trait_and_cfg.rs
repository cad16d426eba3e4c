// `impl Trait` nested in the output, `?` in an async body whose output contains `impl Trait`,
// and `#[cfg]` on a parameter of a retrying step.
use std::fmt::Display;

#[derive(Debug)]
struct Failure;

impl Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("failure")
    }
}

#[flujo::pipeline_step]
fn pair(x: u8) -> (impl Display, u8) {
    (x, x + 1)
}

#[flujo::pipeline_step]
async fn fallible(x: u8) -> Result<impl Display, Failure> {
    let parsed: u8 = checked(x)?;
    Ok(parsed)
}

fn checked(x: u8) -> Result<u8, Failure> {
    if x > 100 { Err(Failure) } else { Ok(x) }
}

#[flujo::pipeline_step(retries = 1, backoff_ms = 1)]
fn configured(#[cfg(test)] only_in_tests: u8, always: u8) -> Result<u8, Failure> {
    Ok(always)
}

fn main() {
    let (shown, next) = pair(1);
    assert_eq!((shown.to_string(), next), ("1".to_owned(), 2));
    let value = futures::executor::block_on(fallible(5)).unwrap();
    assert_eq!(value.to_string(), "5");
    assert_eq!(configured(3).unwrap(), 3);
}
