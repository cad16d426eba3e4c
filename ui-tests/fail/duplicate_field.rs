#[flujo::pipeline_step(fields(model = "a", model = "b"))]
fn call() {}

fn main() {}
