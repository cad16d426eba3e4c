// `kind` names what a step stands for: a step, a tool or an agent.
#[flujo::pipeline_step(kind = "retriever")]
fn search(query: &str) -> usize {
    query.len()
}

#[flujo::pipeline_step(kind = tool)]
fn lookup(query: &str) -> usize {
    query.len()
}

fn main() {}
