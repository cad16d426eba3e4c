fn plan(x: u32) -> u32 {
    x
}

flujo::pipeline! {
    pipeline no_steps(x: u32) -> u32 {}
}

flujo::pipeline! {
    pipeline commas(x: u32) -> u32 {
        plan, plan
    }
}

flujo::pipeline! {
    pipeline not_awaited(x: u32) -> u32 {
        plan.wait
    }
}

fn main() {}
