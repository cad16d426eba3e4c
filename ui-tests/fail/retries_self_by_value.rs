struct Agent;

impl Agent {
    #[flujo::pipeline_step(retries = 1)]
    fn run(self) -> Result<(), String> {
        Ok(())
    }
}

fn main() {}
