fn cheap(text: &str) -> Result<String, std::io::Error> {
    Ok(text.to_owned())
}

#[flujo::pipeline_step(fallback = cheap)]
fn draft(text: String, words: u32) -> Result<String, std::io::Error> {
    Ok(format!("{text} {words}"))
}

fn main() {
    let _ = draft(String::new(), 3);
}
