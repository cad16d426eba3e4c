#[flujo::pipeline_step(name = plan)]
fn plan() {}

fn main() {}
