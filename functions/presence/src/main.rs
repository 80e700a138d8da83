use shared::app::Upstream;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::telemetry::init();
    let app = shared::App::from_env().await?;
    // Becoming available offers the agent a waiting caller at once: a call through Twilio.
    app.warm_up(&[Upstream::DynamoDb, Upstream::Twilio]).await;
    let app = &app;
    shared::lambda::run(move |req| shared::handlers::presence::handle(app, req)).await
}
