// A pipeline without a context takes only the type namespace: a function and a local of
// the same snake_case name beside it compile.
use flujo::{Flujo, pipeline, pipeline_step};

#[pipeline_step]
fn words(text: String) -> Vec<String> {
    text.split_whitespace().map(str::to_owned).collect()
}

#[pipeline_step]
fn size(words: Vec<String>) -> usize {
    words.len()
}

pipeline! {
    pipeline count(text: String) -> usize {
        words >> size
    }
}

// The same name as the pipeline, in the value namespace.
fn count(text: &str) -> usize {
    text.len()
}

fn main() {
    let count_of_chars = count("abc");
    let count = Flujo::new(count::new()).run("one two".to_owned());
    assert_eq!(count.output.unwrap(), 2);
    assert_eq!(count_of_chars, 3);
}
