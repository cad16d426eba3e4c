struct Prompt(String);

fn cheap(prompt: Prompt) -> Result<String, std::io::Error> {
    Ok(prompt.0)
}

#[flujo::pipeline_step(fallback = cheap)]
fn draft(prompt: Prompt) -> Result<String, std::io::Error> {
    Ok(prompt.0)
}

fn main() {
    let _ = draft(Prompt(String::new()));
}
