# The trigger: the jobs' image (a single-architecture tag of it, see trigger_image), entry point
# `parqour-lambda`.

resource "aws_lambda_function" "trigger" {
  function_name = "${local.name}-trigger"
  role          = aws_iam_role.trigger.arn
  package_type  = "Image"
  image_uri     = coalesce(var.trigger_image, var.image)
  architectures = [var.architecture]
  memory_size   = 256
  timeout       = 120

  image_config {
    entry_point = ["/usr/local/bin/parqour-lambda"]
  }

  environment {
    variables = local.trigger_environment
  }

  logging_config {
    log_format = "Text"
    log_group  = aws_cloudwatch_log_group.trigger.name
  }

  tags       = var.tags
  depends_on = [aws_iam_role_policy.trigger]
}

# SNS invokes the function asynchronously: a failed invocation (S3 or Batch unavailable) is
# retried twice, then the event goes to this queue. Invalid messages do not fail the invocation:
# they are logged and counted (InvalidMessages), never retried.
resource "aws_sqs_queue" "trigger_failed" {
  name                      = "${local.name}-trigger-failed"
  message_retention_seconds = 1209600
  sqs_managed_sse_enabled   = true
  tags                      = var.tags
}

resource "aws_lambda_function_event_invoke_config" "trigger" {
  function_name                = aws_lambda_function.trigger.function_name
  maximum_retry_attempts       = 2
  maximum_event_age_in_seconds = 3600

  destination_config {
    on_failure {
      destination = aws_sqs_queue.trigger_failed.arn
    }
  }
}

resource "aws_lambda_permission" "sns" {
  statement_id  = "sns"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.trigger.function_name
  principal     = "sns.amazonaws.com"
  source_arn    = var.sns_topic_arn
}

resource "aws_sns_topic_subscription" "trigger" {
  topic_arn           = var.sns_topic_arn
  protocol            = "lambda"
  endpoint            = aws_lambda_function.trigger.arn
  filter_policy       = var.sns_filter_policy
  filter_policy_scope = var.sns_filter_policy == null ? null : "MessageBody"
  depends_on          = [aws_lambda_permission.sns]
}
