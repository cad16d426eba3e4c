#[flujo::pipeline_step(name = "a", name = "b")]
fn plan() {}

fn main() {}
