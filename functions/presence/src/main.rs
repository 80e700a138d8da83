use shared::app::Upstream;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::telemetry::init();
    let app = shared::App::from_env().await?;
    // Becoming available offers the agent a waiting caller at once: a call through Twilio.
    app.warm_up(&[Upstream::DynamoDb, Upstream::Twilio]).await;
    let app = &app;
    lambda_http::run(lambda_http::service_fn(move |req| shared::handlers::presence::handle(app, req))).await
}
