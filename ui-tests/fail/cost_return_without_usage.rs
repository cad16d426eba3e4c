struct Answer {
    text: String,
}

#[flujo::track_cost(model = "gpt-4o")]
fn ask(prompt: &str) -> Result<Answer, anyhow::Error> {
    Ok(Answer { text: prompt.to_owned() })
}

fn main() {
    let _ = ask("hi").map(|a| a.text);
}
