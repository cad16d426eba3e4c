// A skipped parameter cannot reach a field in any form.
struct Request {
    prompt: String,
}

#[flujo::pipeline_step(
    skip(prompt, secret),
    fields(
        trimmed = %prompt.trim(),
        borrowed = ?&prompt,
        length = prompt.len(),
        closure = (|| secret.len())(),
        formatted = %format!("{}", secret),
        inline = %format!("{secret:?}"),
        field_of_other = request.prompt.len(),
        allowed = request.prompt.is_empty(),
    )
)]
fn call(prompt: &str, secret: &str, request: &Request) -> usize {
    prompt.len() + secret.len() + request.prompt.len()
}

fn main() {}
