use shared::app::Upstream;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::telemetry::init();
    let app = shared::App::from_env().await?;
    app.warm_up(&[Upstream::DynamoDb, Upstream::Twilio]).await;
    let app = &app;
    shared::lambda::run(move |req| shared::handlers::conference_connect_client::handle(app, req)).await
}
