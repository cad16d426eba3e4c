struct Client {
    model: String,
}

impl Client {
    #[flujo::track_cost(model = self.model.as_str(), unpriced)]
    fn ask(&self) -> flujo::TokenUsage {
        flujo::TokenUsage::new(1, 1)
    }
}

fn main() {}
