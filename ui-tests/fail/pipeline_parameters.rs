struct Models;

fn plan(_: &Models, x: u32) -> u32 {
    x
}

flujo::pipeline! {
    pipeline owned_context(models: Models, x: u32) -> u32 {
        plan
    }
}

flujo::pipeline! {
    pipeline three(models: &Models, x: u32, y: u32) -> u32 {
        plan
    }
}

flujo::pipeline! {
    pipeline nothing() -> u32 {
        plan
    }
}

fn main() {}
