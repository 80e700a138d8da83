use shared::app::Upstream;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::telemetry::init();
    let app = shared::App::from_env().await?;
    // Callers' choices and their messages: the Calls and Tickets tables; no Twilio REST call.
    app.warm_up(&[Upstream::DynamoDb]).await;
    let app = &app;
    lambda_http::run(lambda_http::service_fn(move |req| shared::handlers::voicemail::handle(app, req))).await
}
