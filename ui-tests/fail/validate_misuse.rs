fn long_enough(text: &String) -> Result<(), String> {
    if text.len() > 3 { Ok(()) } else { Err("too short".into()) }
}

#[flujo::pipeline_step(validate = long_enough)]
fn plain(text: String) -> String {
    text
}

#[flujo::pipeline_step(validate = |t: &String| t.is_empty())]
fn closure(text: String) -> Result<String, anyhow::Error> {
    Ok(text)
}

#[derive(Debug)]
struct OwnError;

impl std::fmt::Display for OwnError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("own error")
    }
}

#[flujo::pipeline_step(validate = long_enough)]
fn cannot_hold(text: String) -> Result<String, OwnError> {
    Ok(text)
}

fn main() {}
