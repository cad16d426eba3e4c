use std::future::Future;

// The future is built elsewhere: the span would time its construction, not its run.
#[flujo::pipeline_step]
fn handed_over() -> impl Future<Output = u32> {
    let future = async { 1 };
    future
}

fn main() {}
