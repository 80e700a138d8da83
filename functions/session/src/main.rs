use shared::app::Upstream;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::telemetry::init();
    let app = shared::App::from_env().await?;
    app.warm_up(&[Upstream::DynamoDb]).await;
    let app = &app;
    shared::lambda::run(move |req| shared::handlers::session::handle(app, req)).await
}
