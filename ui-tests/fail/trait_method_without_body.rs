trait Model {
    #[flujo::pipeline_step]
    fn complete(&self, prompt: &str) -> String;
}

fn main() {}
