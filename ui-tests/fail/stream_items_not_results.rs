use futures::Stream;

struct Chunk;
impl flujo::cost::StreamChunk for Chunk {}

#[flujo::track_cost(model = "gpt-4o")]
fn ask() -> impl Stream<Item = Chunk> {
    futures::stream::iter(vec![Chunk])
}

fn main() {
    let _ = ask();
}
