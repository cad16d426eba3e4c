//! Plain and `Result` returns, early `return` and `?` in the body.
use flujo::pipeline_step;

#[pipeline_step]
fn plain(x: u32) -> u32 {
    if x == 0 {
        return 1;
    }
    x * 2
}

#[pipeline_step]
fn unit() {}

#[pipeline_step(name = "parse", fields(len = raw.len()))]
fn parse(raw: &str) -> Result<u32, std::num::ParseIntError> {
    if raw.is_empty() {
        return Ok(0);
    }
    let value: u32 = raw.parse()?;
    Ok(value)
}

#[pipeline_step(retries = 2, backoff = "fixed", backoff_ms = 0)]
fn boxed(raw: String) -> Result<u32, Box<dyn std::error::Error + Send + Sync>> {
    Ok(raw.parse::<u32>()?)
}

fn main() {
    assert_eq!(plain(0), 1);
    assert_eq!(plain(2), 4);
    unit();
    assert_eq!(parse(""), Ok(0));
    assert_eq!(parse("7"), Ok(7));
    assert!(parse("x").is_err());
    assert_eq!(boxed("5".into()).unwrap(), 5);
}
