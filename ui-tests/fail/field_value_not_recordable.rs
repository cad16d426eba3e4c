struct Config {
    temperature: f32,
}

#[flujo::pipeline_step(fields(config = config))]
fn call(config: &Config) -> f32 {
    config.temperature
}

fn main() {}
