// This function alone, for `cargo lambda watch` and the tools that run a function by its binary's
// name; Lambda runs the same code from the one release binary (lambda/).
#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::functions::run("tickets").await
}
