#[derive(Debug)]
struct NotAnError;

impl std::fmt::Display for NotAnError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("not an error")
    }
}

#[flujo::pipeline_step]
fn plan(x: u32) -> Result<u32, NotAnError> {
    Ok(x)
}

flujo::pipeline! {
    pipeline answer(x: u32) -> u32 {
        plan?
    }
}

fn main() {}
