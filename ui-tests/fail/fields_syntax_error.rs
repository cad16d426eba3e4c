#[flujo::pipeline_step(fields(= 3))]
fn call() {}

fn main() {}
