use shared::app::Upstream;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::telemetry::init();
    let app = shared::App::from_env().await?;
    // Every hold-music turn reads the customer's conference; some ring an agent or apologise.
    app.warm_up(&[Upstream::DynamoDb, Upstream::Twilio]).await;
    let app = &app;
    shared::lambda::run(move |req| shared::handlers::conference_wait::handle(app, req)).await
}
