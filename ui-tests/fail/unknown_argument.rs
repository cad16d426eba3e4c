#[flujo::pipeline_step(nmae = "plan")]
fn plan() {}

#[flujo::pipeline_step(verbose)]
fn draft() {}

fn main() {}
