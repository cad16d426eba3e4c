#[flujo::track_cost(model = "gpt-4o")]
fn ask(prompt: &str) {
    println!("{prompt}");
}

fn main() {}
