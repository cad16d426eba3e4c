use futures::Stream;

struct Chunk {
    text: String,
}

#[flujo::track_cost(model = "gpt-4o")]
fn ask() -> impl Stream<Item = Result<Chunk, std::io::Error>> {
    futures::stream::iter(vec![Ok(Chunk { text: String::new() })])
}

fn main() {
    let _ = ask();
}
