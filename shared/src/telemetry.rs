/// JSON logs with the Lambda request id when the function runs with `LoggingConfig: JSON`
/// (the runtime reads `AWS_LAMBDA_LOG_FORMAT`); plain text locally.
pub fn init() {
    lambda_http::tracing::init_default_subscriber();
}
