struct Outline(String);
struct Draft(String);

#[flujo::pipeline_step]
fn plan(question: String) -> Outline {
    Outline(question)
}

#[flujo::pipeline_step]
fn draft(outline: Outline) -> Draft {
    Draft(outline.0)
}

#[flujo::pipeline_step]
fn publish(draft: Draft) -> String {
    draft.0
}

flujo::pipeline! {
    pipeline answer(question: String) -> String {
        plan >> publish >> draft
    }
}

fn main() {}
