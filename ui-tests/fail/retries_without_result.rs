#[flujo::pipeline_step(retries = 2)]
fn call() -> String {
    String::new()
}

fn main() {}
