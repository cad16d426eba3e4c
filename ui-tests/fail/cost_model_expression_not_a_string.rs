struct Client {
    model_id: u32,
}

impl Client {
    #[flujo::track_cost(model = self.model_id)]
    fn ask(&self) -> flujo::TokenUsage {
        flujo::TokenUsage::new(1, 1)
    }
}

fn main() {
    let _ = Client { model_id: 4 }.ask();
}
