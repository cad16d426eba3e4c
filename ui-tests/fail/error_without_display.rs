#[derive(Debug)]
struct Opaque;

#[flujo::pipeline_step]
fn call() -> Result<(), Opaque> {
    Err(Opaque)
}

fn main() {}
