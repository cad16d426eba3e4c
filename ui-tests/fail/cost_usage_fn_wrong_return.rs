struct Answer {
    tokens: u64,
}

fn tokens_of(answer: &Answer) -> u64 {
    answer.tokens
}

#[flujo::track_cost(model = "gpt-4o", usage = tokens_of)]
fn ask() -> Answer {
    Answer { tokens: 3 }
}

fn main() {
    let _ = ask();
}
