#[flujo::pipeline_step(crate = "flujo")]
fn call() {}

fn main() {}
