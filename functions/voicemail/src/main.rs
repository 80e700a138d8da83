use shared::app::Upstream;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::telemetry::init();
    let app = shared::App::from_env().await?;
    // Callers' choices and their messages: the Calls and Tickets tables; no Twilio REST call.
    app.warm_up(&[Upstream::DynamoDb]).await;
    let app = &app;
    shared::lambda::run(move |req| shared::handlers::voicemail::handle(app, req)).await
}
