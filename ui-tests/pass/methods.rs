//! Methods taking `self`, `&self` and `&mut self`.
use flujo::pipeline_step;

struct Agent {
    name: String,
    turns: u32,
}

impl Agent {
    #[pipeline_step(fields(agent = self.name.as_str()))]
    fn name(&self) -> &str {
        &self.name
    }

    #[pipeline_step(retries = 1, backoff_ms = 0)]
    fn turn(&mut self) -> Result<u32, String> {
        self.turns += 1;
        Ok(self.turns)
    }

    #[pipeline_step]
    fn finish(self) -> u32 {
        self.turns
    }

    #[pipeline_step]
    async fn think(&mut self) -> u32 {
        self.turns += 10;
        self.turns
    }
}

fn main() {
    let mut agent = Agent { name: "a".into(), turns: 0 };
    assert_eq!(agent.name(), "a");
    assert_eq!(agent.turn(), Ok(1));
    assert_eq!(futures::executor::block_on(agent.think()), 11);
    assert_eq!(agent.finish(), 11);
}
