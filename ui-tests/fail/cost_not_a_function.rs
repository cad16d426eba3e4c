#[flujo::track_cost(model = "gpt-4o")]
struct Client;

fn main() {}
