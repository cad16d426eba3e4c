#[flujo::pipeline_step(timeout_ms = 500)]
async fn summarise(text: String) -> String {
    text
}

fn main() {
    let _ = summarise(String::new());
}
