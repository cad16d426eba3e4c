fn cheap(_: String) -> Result<String, std::io::Error> {
    Ok(String::new())
}

#[flujo::pipeline_step(fallback = "cheap")]
fn not_a_path(text: String) -> Result<String, std::io::Error> {
    Ok(text)
}

#[flujo::pipeline_step(fallback = cheap)]
fn never_fails(text: String) -> String {
    text
}

#[flujo::pipeline_step(fallback = cheap)]
fn unnamed(_: String) -> Result<String, std::io::Error> {
    Ok(String::new())
}

#[flujo::pipeline_step(fallback = cheap)]
fn configured(text: String, #[cfg(test)] verbose: bool) -> Result<String, std::io::Error> {
    Ok(text)
}

fn main() {}
