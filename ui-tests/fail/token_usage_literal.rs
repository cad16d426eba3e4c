// TokenUsage grows with what providers report: it is built with its constructor and
// `with_*` methods, never a struct literal, so that a new count is not a breaking change.
fn main() {
    let _usage = flujo::TokenUsage {
        input: 1,
        output: 2,
        cache_read_input: 0,
        cache_write_input: 0,
        cache_write_1h_input: 0,
        reasoning_output: 0,
    };
}
