#[derive(Debug)]
struct ApiError;

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("api error")
    }
}

fn is_transient(error: &ApiError) -> bool {
    let _ = error;
    true
}

#[flujo::pipeline_step(retry_if = is_transient, retry_for_ms = 1000)]
fn without_retries() -> Result<(), ApiError> {
    Ok(())
}

#[flujo::pipeline_step(retries = 2, retry_for_ms = 0)]
fn no_time_at_all() -> Result<(), ApiError> {
    Ok(())
}

#[flujo::pipeline_step(retries = 2, retry_for_ms = 90000000)]
fn longer_than_a_day() -> Result<(), ApiError> {
    Ok(())
}

#[flujo::pipeline_step(retries = 2, backoff_ms = 500, max_backoff_ms = 200)]
fn cap_below_the_backoff() -> Result<(), ApiError> {
    Ok(())
}

#[flujo::pipeline_step(retries = 2, max_backoff_ms = 50)]
fn cap_below_the_default_backoff() -> Result<(), ApiError> {
    Ok(())
}

#[flujo::pipeline_step(retries = 2, retry_if = "is_transient")]
fn judge_not_a_path() -> Result<(), ApiError> {
    Ok(())
}

fn judges_another_error(error: &std::io::Error) -> bool {
    let _ = error;
    true
}

#[flujo::pipeline_step(retries = 2, retry_if = judges_another_error)]
fn judge_of_another_error() -> Result<(), ApiError> {
    Ok(())
}

fn main() {}
