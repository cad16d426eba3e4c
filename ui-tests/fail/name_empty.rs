#[flujo::pipeline_step(name = "  ")]
fn plan() {}

fn main() {}
