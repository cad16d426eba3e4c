#[flujo::pipeline_step]
fn count(text: String) -> usize {
    text.len()
}

flujo::pipeline! {
    pipeline counting(text: String) -> String {
        count
    }
}

fn main() {}
