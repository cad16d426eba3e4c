use futures::Stream;

struct Chunk;
impl flujo::cost::StreamChunk for Chunk {}

fn usage_of(_: &Chunk) -> flujo::TokenUsage {
    flujo::TokenUsage::new(1, 1)
}

#[flujo::track_cost(model = "gpt-4o", usage = usage_of)]
fn ask() -> impl Stream<Item = Result<Chunk, std::io::Error>> {
    futures::stream::empty()
}

#[flujo::track_cost(model = "gpt-4o", stream = true)]
fn ask_flag() -> impl Stream<Item = Result<Chunk, std::io::Error>> {
    futures::stream::empty()
}

fn main() {}
