// Every function in Lambda: template.yaml builds this one binary for all of them and sets
// WARMLINE_FUNCTION on each, so the release build links (fat LTO) once rather than per function.
#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::functions::run_from_env().await
}
