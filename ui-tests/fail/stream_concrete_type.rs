struct Chunk;
impl flujo::cost::StreamChunk for Chunk {}

type Chunks = futures::stream::Iter<std::vec::IntoIter<Result<Chunk, std::io::Error>>>;

#[flujo::track_cost(model = "gpt-4o", stream)]
fn ask() -> Result<Chunks, Box<dyn std::error::Error + Send + Sync>> {
    Ok(futures::stream::iter(vec![Ok(Chunk)]))
}

fn main() {
    let _ = ask();
}
