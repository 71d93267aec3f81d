//! The trigger as an AWS Lambda function (custom runtime, `provided.al2023`, or the container
//! image with this binary as its entry point). Built with `--features lambda`.
//!
//! Subscribed to the SNS topic of "partition closed" messages (or fed by an SQS queue
//! subscribed to it); everything it does is [`parqour::trigger::Trigger::handle`], configured by
//! the same environment variables as `parqour trigger` (see `parqour::trigger`). After each
//! invocation it prints one CloudWatch Embedded Metric Format line (namespace `parqour`,
//! dimension `Function`).

use std::sync::Arc;

use lambda_runtime::{Error, LambdaEvent, service_fn};
use parqour::trigger::Trigger;
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("PARQOUR_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_current_span(false)
        .with_ansi(false)
        .with_writer(std::io::stderr)
        .init();
    let trigger = Arc::new(Trigger::from_env(|name| std::env::var(name).ok(), true).await?);
    let function: Arc<str> = std::env::var("AWS_LAMBDA_FUNCTION_NAME")
        .unwrap_or_else(|_| "parqour".into())
        .into();
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let trigger = trigger.clone();
        let function = function.clone();
        // Boxed: the trigger's future is large, the runtime's layers nest it further.
        Box::pin(async move {
            let report = trigger.handle(&event.payload).await;
            println!("{}", report.emf_line(&function));
            report.lambda_response().map_err(Error::from)
        })
    }))
    .await
}
